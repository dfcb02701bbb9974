package daemon_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"

	"github.com/sandbox0/sandbox0d/internal/tssdktest"
)

// dropFirstAnswer forwards every request to the daemon's socket and, for the
// first request of each path and Idempotency-Key, drops the connection
// after the daemon has answered: what a client sees when the network fails
// mid-response, after the work was done.
type dropFirstAnswer struct {
	socket string
	mu     sync.Mutex
	seen   map[string]int
}

func (p *dropFirstAnswer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, _ := http.NewRequest(r.Method, "http://sandbox0d"+r.URL.RequestURI(), r.Body)
	req.Header = r.Header.Clone()
	res, err := socketClient(p.socket).Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	p.mu.Lock()
	slot := r.Method + " " + r.URL.Path + " " + r.Header.Get("Idempotency-Key")
	p.seen[slot]++
	first := p.seen[slot] == 1
	p.mu.Unlock()
	if first && r.Method == http.MethodPost {
		panic(http.ErrAbortHandler) // closes the connection without an answer
	}
	for k, v := range res.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(res.StatusCode)
	_, _ = w.Write(body)
}

// Issue 24 point 8 with the official TypeScript SDK: its retry after a
// dropped answer creates a second run without an Idempotency-Key and none
// with one. Needs node and testdata/tssdk/node_modules; skipped otherwise.
func TestTypeScriptSDKRetryAfterADroppedAnswer(t *testing.T) {
	t.Parallel()
	ts := tssdktest.Require(t)
	backend := sessionstest.New(map[string]int64{"agent_a": 1})
	r := start(t, baseConfig(t.TempDir()), daemon.Options{Backend: backend})
	c := r.client()
	d, err := c.Beta.Deployments.New(t.Context(), createParams("retried"))
	require.NoError(t, err)
	proxy := &dropFirstAnswer{socket: r.socket, seen: map[string]int{}}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)

	out := ts.Run(t, "retry.mjs", "SANDBOX0D_URL="+srv.URL, "DEPLOYMENT_ID="+d.ID)
	var got struct{ Keyed, Unkeyed string }
	require.NoError(t, json.Unmarshal(out, &got), "%s", out)

	runs, err := c.Beta.DeploymentRuns.List(t.Context(), anthropic.BetaDeploymentRunListParams{DeploymentID: anthropic.String(d.ID)})
	require.NoError(t, err)
	ids := map[string]int{}
	for _, run := range runs.Data {
		ids[run.ID]++
	}
	// Keyed: sent twice (the proxy saw both), ran once, the retry got that run.
	assert.Equal(t, 2, proxy.seen["POST /v1/deployments/"+d.ID+"/run ts-run-1"])
	assert.Contains(t, ids, got.Keyed)
	// Unkeyed: sent twice, ran twice: the dropped first run is an orphan.
	assert.Equal(t, 2, proxy.seen["POST /v1/deployments/"+d.ID+"/run "])
	assert.Equal(t, 3, len(runs.Data), "one run for the keyed call, two for the unkeyed one")
	assert.Equal(t, 3, len(backend.Requests()))
}
