package daemon_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/webhooks"
)

// hookReceiver verifies every delivery with the official SDK and records
// the verified events.
type hookReceiver struct {
	t    *testing.T
	key  string
	mu   sync.Mutex
	got  []*anthropic.UnwrapWebhookEvent
	ids  []string
	news chan struct{}
}

func newHookReceiver(t *testing.T, seed byte) (*hookReceiver, string) {
	raw := make([]byte, 24)
	for i := range raw {
		raw[i] = seed ^ byte(i*7)
	}
	h := &hookReceiver{t: t, key: "whsec_" + base64.StdEncoding.EncodeToString(raw), news: make(chan struct{}, 1000)}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv.URL + "/hooks"
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	client := anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithAPIKey("unused"), option.WithWebhookKey(h.key))
	ev, err := client.Beta.Webhooks.Unwrap(body, r.Header)
	if err != nil {
		h.t.Errorf("a delivery did not verify: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.got = append(h.got, ev)
	h.ids = append(h.ids, r.Header.Get("webhook-id"))
	h.mu.Unlock()
	h.news <- struct{}{}
}

// await waits until the receiver holds n events, and returns them as
// "type object" strings.
func (h *hookReceiver) await(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		h.mu.Lock()
		have := len(h.got)
		h.mu.Unlock()
		if have >= n {
			break
		}
		select {
		case <-h.news:
		case <-deadline:
			t.Fatalf("only %d of %d webhook events arrived", have, n)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, ev := range h.got {
		out = append(out, ev.Data.Type+" "+ev.Data.ID)
	}
	return out
}

// Changes made through the API arrive as verified webhooks; the admin
// routes list endpoints and deliveries (never keys), retry an event with
// its webhook-id, send a signed ping; a reload adds an endpoint.
func TestWebhooksThroughTheDaemon(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := baseConfig(dir)
	rc, url := newHookReceiver(t, 3)
	cfg.Webhooks = webhooks.Config{Endpoints: []webhooks.EndpointConfig{{URL: url, SigningKey: webhooks.Secret(rc.key)}}}
	backend := sessionstest.New(map[string]int64{"agent_a": 1})
	r := start(t, cfg, daemon.Options{Backend: backend})
	ctx := context.Background()
	client := r.client()

	d, err := client.Beta.Deployments.New(ctx, createParams("hooked"))
	require.NoError(t, err)
	run, err := client.Beta.Deployments.Run(ctx, d.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	_, err = client.Beta.Deployments.Pause(ctx, d.ID, anthropic.BetaDeploymentPauseParams{})
	require.NoError(t, err)
	_, err = client.Beta.Deployments.Unpause(ctx, d.ID, anthropic.BetaDeploymentUnpauseParams{})
	require.NoError(t, err)
	_, err = client.Beta.Deployments.Archive(ctx, d.ID, anthropic.BetaDeploymentArchiveParams{})
	require.NoError(t, err)
	_, err = client.Beta.Deployments.Pause(ctx, d.ID, anthropic.BetaDeploymentPauseParams{})
	require.Error(t, err, "an archived deployment cannot be paused")

	got := rc.await(t, 6)
	assert.ElementsMatch(t, []string{
		"deployment.created " + d.ID, "deployment_run.started " + run.ID, "deployment_run.succeeded " + run.ID,
		"deployment.paused " + d.ID, "deployment.unpaused " + d.ID, "deployment.archived " + d.ID,
	}, got)

	admin := socketClient(r.socket)
	status, ov := do(t, admin, http.MethodGet, "http://sandbox0d/admin/webhooks", "", nil)
	require.Equal(t, http.StatusOK, status)
	eps := ov["endpoints"].([]any)
	require.Len(t, eps, 1)
	ep := eps[0].(map[string]any)
	assert.Equal(t, url, ep["url"])
	assert.EqualValues(t, 1, ep["signing_keys"])
	assert.NotContains(t, strings.ToLower(toJSON(ov)), strings.ToLower(rc.key[6:]), "the key is never returned")

	status, list := do(t, admin, http.MethodGet, "http://sandbox0d/admin/webhooks/deliveries", "", nil)
	require.Equal(t, http.StatusOK, status)
	require.Len(t, list["data"], 6)

	rc.mu.Lock()
	firstID := rc.ids[0]
	firstType := rc.got[0].Data.Type
	rc.mu.Unlock()
	status, res := do(t, admin, http.MethodPost, "http://sandbox0d/admin/webhooks/events/"+firstID+"/retry", "", map[string]any{})
	require.Equal(t, http.StatusOK, status, "%v", res)
	assert.EqualValues(t, 1, res["queued"])
	rc.await(t, 7)
	rc.mu.Lock()
	assert.Equal(t, firstID, rc.ids[6], "a retried event keeps its webhook-id")
	assert.Equal(t, firstType, rc.got[6].Data.Type)
	rc.mu.Unlock()
	status, _ = do(t, admin, http.MethodPost, "http://sandbox0d/admin/webhooks/events/wevt_nope/retry", "", nil)
	assert.Equal(t, http.StatusNotFound, status)

	status, res = do(t, admin, http.MethodPost, "http://sandbox0d/admin/webhooks/test", "", map[string]any{"url": url})
	require.Equal(t, http.StatusOK, status, "%v", res)
	assert.Equal(t, true, res["delivered"])
	assert.Contains(t, rc.await(t, 8), webhooks.TestEventType+" "+res["event_id"].(string))
	status, res = do(t, admin, http.MethodPost, "http://sandbox0d/admin/webhooks/test", "", map[string]any{"url": "https://elsewhere.example/"})
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, toJSON(res), "url:")
	assert.Contains(t, toJSON(res), "is not a configured webhook endpoint", "an endpoint is configured, just not this one")
	assert.Contains(t, toJSON(res), "add it under webhooks.endpoints")

	// Reload (SIGHUP) adds an endpoint that only wants deployment.created.
	second, url2 := newHookReceiver(t, 9)
	cfg.Webhooks.Endpoints = append(cfg.Webhooks.Endpoints, webhooks.EndpointConfig{
		URL: url2, SigningKey: webhooks.Secret(second.key), Events: []string{"deployment.created"}})
	cfg.Runs.Retention.Interval = time.Hour
	require.NoError(t, r.d.Reload(cfg))
	d2, err := client.Beta.Deployments.New(ctx, createParams("after reload"))
	require.NoError(t, err)
	_, err = client.Beta.Deployments.Pause(ctx, d2.ID, anthropic.BetaDeploymentPauseParams{})
	require.NoError(t, err)
	assert.Equal(t, []string{"deployment.created " + d2.ID}, second.await(t, 1))
	rc.await(t, 10)

	metrics := scrape(t, admin)
	assert.Contains(t, metrics, `sandbox0d_webhook_deliveries_total{result="delivered"}`)
	assert.Contains(t, metrics, "sandbox0d_webhook_pending")
	assert.Contains(t, metrics, "sandbox0d_webhook_delivery_seconds_bucket")
	assert.NotContains(t, r.logs.String(), rc.key[6:], "keys are never logged")
}

func scrape(t *testing.T, c *http.Client) string {
	t.Helper()
	resp, err := c.Get("http://sandbox0d/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return string(data)
}

// The webhooks section is validated with the key named; keys never appear
// in the error.
func TestWebhookConfigErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct{ yaml, key, msg string }{
		{"webhooks:\n  endpoints:\n    - url: http://hooks.example.com/x\n      signing_key: whsec_c2VjcmV0c2VjcmV0\n",
			"webhooks.endpoints[0].url", "loopback"},
		{"webhooks:\n  endpoints:\n    - url: https://hooks.example.com/x\n",
			"webhooks.endpoints[0].signing_key", "must be set"},
		{"webhooks:\n  endpoints:\n    - url: https://hooks.example.com/x\n      signing_key: whsec_c2VjcmV0c2VjcmV0\n      events: [deployment.exploded]\n",
			"webhooks.endpoints[0].events[0]", "unknown event type"},
		{"webhooks:\n  endpoints:\n    - url: https://hooks.example.com/x\n      signing_keys: [whsec_c2VjcmV0c2VjcmV0, 'whsec_not base64!']\n",
			"webhooks.endpoints[0].signing_keys[1]", "base64"},
		{"webhooks:\n  retry_schedule: [5s, -1s]\n", "webhooks.retry_schedule[1]", "positive"},
	} {
		file := filepath.Join(dir, "config.yaml")
		require.NoError(t, os.WriteFile(file, []byte("data_dir: "+dir+"\nsocket: "+filepath.Join(dir, "s.sock")+"\n"+tc.yaml), 0o600))
		_, err := daemon.LoadConfig(newViperWithFlags(t), file)
		var ce *daemon.ConfigError
		require.ErrorAs(t, err, &ce, tc.yaml)
		assert.Equal(t, tc.key, ce.Key)
		assert.Contains(t, ce.Problem, tc.msg)
		assert.NotContains(t, err.Error(), "c2VjcmV0c2VjcmV0")
	}

	// A valid section with plaintext allowed, a key file and the defaults.
	keyFile := filepath.Join(dir, "hook.key")
	require.NoError(t, os.WriteFile(keyFile, []byte("whsec_c2VjcmV0c2VjcmV0\n"), 0o600))
	file := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(file, []byte("data_dir: "+dir+"\nsocket: "+filepath.Join(dir, "s.sock")+
		"\nwebhooks:\n  endpoints:\n    - url: http://hooks.internal/x\n      allow_plaintext: true\n      signing_key_file: "+keyFile+"\n"), 0o600))
	cfg, err := daemon.LoadConfig(newViperWithFlags(t), file)
	require.NoError(t, err)
	assert.Equal(t, webhooks.DefaultRetrySchedule, cfg.Webhooks.RetrySchedule)
	assert.Equal(t, 15*time.Second, cfg.Webhooks.Timeout)
	assert.Equal(t, 7*24*time.Hour, cfg.Webhooks.Retention)
}

func toJSON(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}
