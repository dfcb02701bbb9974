package deployments_test

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/internal/fakeupstream"
	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/sessions/upstream"
	"github.com/sandbox0/sandbox0d/store"
)

// Scheduled fires through the real upstream backend against the strict fake
// (in memory, so the bubble's fake clock drives retries and timeouts too).
func TestScheduledFiresThroughUpstreamAutoPauseRules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := fakeupstream.NewInMemory(t)
		fake.AddAgent("agent_a", 1)
		fake.AddEnvironment("env")
		b, err := upstream.New(upstream.Config{URL: fake.URL, APIKey: fake.APIKey(), HTTPClient: fake.Client(),
			RetryWindow: 30 * time.Second, RequestTimeout: 5 * time.Second})
		require.NoError(t, err)
		st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{NoSync: true})
		require.NoError(t, err)
		k, err := crypto.GenerateKeyring()
		require.NoError(t, err)
		svc := deployments.NewService(deployments.Config{Store: st, Backend: b, Sealer: k, Logger: slog.New(slog.DiscardHandler)})
		sched := deployments.NewScheduler(svc, deployments.SchedulerConfig{})
		_, err = sched.Load()
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- sched.Run(ctx) }()
		w := &world{t: t, store: st, svc: svc, sched: sched}
		defer func() {
			cancel()
			require.NoError(t, <-done)
			require.NoError(t, st.Close())
		}()

		d := w.create("*/5 * * * *", "UTC")
		// 00:05 ok; 00:10 rate limited (keeps firing); 00:15 500s until the
		// retry window closes → unknown_error (pauses); nothing after.
		sleepUntil(at("00:06"))
		fake.FailNext(fakeupstream.RouteCreateSession, 1, http.StatusTooManyRequests, "slow down")
		sleepUntil(at("00:11"))
		fake.InjectFault(fakeupstream.RouteCreateSession, -1, fakeupstream.Fault{Status: 500, Message: "boom"})
		sleepUntil(at("00:30"))
		assert.Equal(t, []string{"00:05", "00:10", "00:15"}, w.scheduledAt(d.ID))
		page, err := svc.ListRuns(context.Background(), deployments.RunQuery{DeploymentID: d.ID, Limit: 10})
		require.NoError(t, err)
		require.Len(t, page.Items, 3)
		assert.Equal(t, sessions.ErrUnknown, page.Items[0].Error.Type)
		assert.Equal(t, sessions.ErrSessionRateLimited, page.Items[1].Error.Type)
		assert.NotEmpty(t, page.Items[2].SessionID)
		got, err := svc.Get(context.Background(), d.ID)
		require.NoError(t, err)
		require.NotNil(t, got.PausedReason)
		assert.Equal(t, sessions.ErrUnknown, got.PausedReason.ErrorType)
		assert.Equal(t, 1, fake.SessionsCreated())
	})
}

// A burst of fires due in the same minute against an upstream that answers
// slowly: the backend never has more than its limit in flight, and every fire
// gets exactly one run with its own session. 256 fires are four times the
// scheduler's workers and sixteen times the backend's limit, so the workers
// queue on the limit for the whole burst (it was 1,000, which only repeated
// the same waves at four times the cost).
func TestBurstOfFiresThroughSlowUpstream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := fakeupstream.NewInMemory(t, fakeupstream.WithoutRecording())
		fake.AddAgent("agent_a", 1)
		fake.AddEnvironment("env")
		fake.SetLatency(2 * time.Second)
		b, err := upstream.New(upstream.Config{URL: fake.URL, APIKey: fake.APIKey(), HTTPClient: fake.Client(),
			MaxConcurrency: 16, RequestTimeout: 30 * time.Second})
		require.NoError(t, err)
		st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{NoSync: true})
		require.NoError(t, err)
		const n = 256
		// The deployments are set up through a service over the in-memory
		// backend (agent_a and env resolve to the same stored definition),
		// eight at a time so that their commits are shared: creating them one
		// by one through the fake's HTTP API was most of the test's time.
		setup := deployments.NewService(deployments.Config{Store: st, Backend: sessionstest.New(map[string]int64{"agent_a": 1}),
			Logger: slog.New(slog.DiscardHandler)})
		var creators sync.WaitGroup
		for range 8 {
			creators.Go(func() {
				for range n / 8 {
					in, err := deployments.DecodeCreate(createBody("1 0 * * *", "UTC")) // all due at 00:01
					if assert.NoError(t, err) {
						_, err = setup.Create(context.Background(), in)
						assert.NoError(t, err)
					}
				}
			})
		}
		creators.Wait()
		require.False(t, t.Failed())
		svc := deployments.NewService(deployments.Config{Store: st, Backend: b, Logger: slog.New(slog.DiscardHandler)})
		sched := deployments.NewScheduler(svc, deployments.SchedulerConfig{Workers: 64})
		_, err = sched.Load()
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- sched.Run(ctx) }()
		sleepUntil(at("00:10"))
		cancel()
		require.NoError(t, <-done)

		page, err := svc.ListRuns(context.Background(), deployments.RunQuery{Limit: 1000})
		require.NoError(t, err)
		require.Len(t, page.Items, n)
		seen := map[string]bool{}
		for _, r := range page.Items {
			require.Nil(t, r.Error, "%+v", r.Error)
			assert.False(t, seen[r.DeploymentID], "one run per deployment")
			seen[r.DeploymentID] = true
		}
		assert.Equal(t, n, fake.SessionsCreated())
		assert.LessOrEqual(t, fake.MaxCreatesInFlight(), 16)
		assert.Equal(t, 16, fake.MaxCreatesInFlight(), "the burst used the whole allowance")
		require.NoError(t, st.Close())
	})
}
