package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/internal/fakeupstream"
)

// verifiedEvents is a webhook receiver that verifies every delivery with the
// official SDK and keeps the set of events ("type object-id") it got.
type verifiedEvents struct {
	t    *testing.T
	key  string
	mu   sync.Mutex
	seen map[string]int
}

func (v *verifiedEvents) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	client := anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithAPIKey("unused"), option.WithWebhookKey(v.key))
	ev, err := client.Beta.Webhooks.Unwrap(body, r.Header)
	if err != nil {
		v.t.Errorf("a delivery did not verify: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	v.mu.Lock()
	v.seen[ev.Data.Type+" "+ev.Data.ID]++
	v.mu.Unlock()
}

func (v *verifiedEvents) missing(want map[string]bool) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for e := range want {
		if v.seen[e] == 0 {
			out = append(out, e)
		}
	}
	return out
}

// Kill -9 while changes are being acknowledged, several times over; after
// the last restart the event of every acknowledged change (deployment
// created, run started, run succeeded) has been delivered at least once.
// The daemons are this test binary re-executed (race-enabled in CI).
func TestWebhookEventsSurviveKill9(t *testing.T) {
	t.Parallel() // it mostly waits on its daemons; so does TestCrashShort
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 16))
	t.Logf("seed %d", seed)
	fake := fakeupstream.New(t, fakeupstream.WithoutRecording())
	fake.AddAgent(benchAgent, 1)
	fake.AddEnvironment(benchEnv)

	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(rng.IntN(256))
	}
	recv := &verifiedEvents{t: t, key: "whsec_" + base64.StdEncoding.EncodeToString(raw), seen: map[string]int{}}
	srv := httptest.NewServer(recv)
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(fmt.Sprintf(
		"webhooks:\n  retry_schedule: [200ms, 200ms, 500ms, 1s, 1s, 2s, 2s, 2s, 2s, 2s]\n  endpoints:\n    - url: %s/hook\n      signing_key: %s\n",
		srv.URL, recv.key)), 0o600))
	exe, err := os.Executable()
	require.NoError(t, err)
	self := launcher{path: exe, env: []string{runAsDaemonEnv + "=1"}}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "data"), 0o700))
	cfg := daemonConfig{DataDir: filepath.Join(dir, "data"), UpstreamURL: fake.URL, UpstreamKey: fake.APIKey(),
		Env: map[string]string{"SANDBOX0D_CONFIG": cfgFile}}

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var (
		mu   sync.Mutex
		want = map[string]bool{}
	)
	acked := func(events ...string) {
		mu.Lock()
		for _, e := range events {
			want[e] = true
		}
		mu.Unlock()
	}
	kills, midWrite := webhookKills, 0
	var inFlight atomic.Int64 // creates and runs sent and not yet answered
	for cycle := range kills {
		p, err := self.start(ctx, cfg)
		require.NoError(t, err)
		work, stopWork := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for c := range 3 {
			wg.Go(func() {
				for n := 0; work.Err() == nil; n++ {
					inFlight.Add(1)
					d, err := p.api.createDeployment(work, deploymentSpec{Name: fmt.Sprintf("hook-%d-%d-%d", cycle, c, n)}.body())
					inFlight.Add(-1)
					if err != nil {
						return // killed
					}
					acked("deployment.created " + d.ID)
					inFlight.Add(1)
					r, err := p.api.runDeployment(work, d.ID)
					inFlight.Add(-1)
					if err != nil {
						return
					}
					// The run's answer acknowledges its intent and its record.
					outcome := "deployment_run.succeeded "
					if r.Error != nil {
						outcome = "deployment_run.failed "
					}
					acked("deployment_run.started "+r.ID, outcome+r.ID)
				}
			})
		}
		time.Sleep(time.Duration(150+rng.IntN(400)) * time.Millisecond) // let changes be acknowledged, then kill mid-stream
		if inFlight.Load() > 0 {
			midWrite++
		}
		p.kill()
		stopWork()
		wg.Wait()
	}
	mu.Lock()
	total := len(want)
	mu.Unlock()
	require.Positive(t, total, "changes were acknowledged between kills")
	assert.Equal(t, kills, midWrite, "kills that landed while a change was unanswered")

	p, err := self.start(ctx, cfg)
	require.NoError(t, err)
	defer func() { _ = p.stop(10 * time.Second) }()
	deadline := time.Now().Add(90 * time.Second)
	var missing []string
	for {
		mu.Lock()
		missing = recv.missing(want)
		mu.Unlock()
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling the receiver; the daemon runs on its own clock
	}
	assert.Empty(t, missing, "acknowledged changes whose event never arrived")
	recv.mu.Lock()
	t.Logf("%d kills, %d acknowledged events, %d distinct delivered", kills, total, len(recv.seen))
	recv.mu.Unlock()
}
