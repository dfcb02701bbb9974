package deployments_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/schedule"
	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/store"
)

// world is a service with a running scheduler inside a synctest bubble:
// time is fake, so a test "sleeps" through hours instantly and fires happen
// exactly at their instants.
type world struct {
	t       *testing.T
	path    string
	store   *store.Store
	svc     *deployments.Service
	sched   *deployments.Scheduler
	backend *sessionstest.Backend
	cancel  context.CancelFunc
	done    chan error
}

func startWorld(t *testing.T, path string, backend *sessionstest.Backend, cfg deployments.SchedulerConfig) *world {
	t.Helper()
	return startWorldWithPolicy(t, path, backend, cfg, schedule.DSTOnce)
}

// startWorldWithPolicy is startWorld with the daemon's schedule.dst_policy.
func startWorldWithPolicy(t *testing.T, path string, backend *sessionstest.Backend, cfg deployments.SchedulerConfig, policy schedule.DSTPolicy) *world {
	t.Helper()
	st, err := store.Open(path, store.Options{NoSync: true}) // fsync is for crashes; no test here crashes
	require.NoError(t, err)
	k, err := crypto.GenerateKeyring()
	require.NoError(t, err)
	svc := deployments.NewService(deployments.Config{Store: st, Backend: backend, Sealer: k, Logger: slog.New(slog.DiscardHandler),
		DSTPolicy: policy})
	_, err = svc.RecoverIntents()
	require.NoError(t, err)
	sched := deployments.NewScheduler(svc, cfg)
	_, err = sched.Load()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	w := &world{t: t, path: path, store: st, svc: svc, sched: sched, backend: backend, cancel: cancel, done: make(chan error, 1)}
	go func() { w.done <- sched.Run(ctx) }()
	return w
}

func (w *world) stop() {
	w.cancel()
	require.NoError(w.t, <-w.done)
	require.Empty(w.t, w.store.Check())
	require.NoError(w.t, w.store.Close())
}

func (w *world) create(expr, tz string) *deployments.Deployment {
	w.t.Helper()
	in, err := deployments.DecodeCreate(createBody(expr, tz))
	require.NoError(w.t, err)
	d, err := w.svc.Create(context.Background(), in)
	require.NoError(w.t, err)
	return d
}

// createBody is the create request of a deployment of agent_a in env with
// the schedule given.
func createBody(expr, tz string) []byte {
	body := map[string]any{
		"name": "s", "agent": map[string]any{"type": "agent", "id": "agent_a", "version": 1}, "environment_id": "env",
		"initial_events": []any{map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": "go"}}}},
		"schedule":       map[string]any{"type": "cron", "expression": expr, "timezone": tz},
	}
	data, _ := json.Marshal(body)
	return data
}

// scheduledAt lists the scheduled_at of a deployment's runs, oldest first.
func (w *world) scheduledAt(id string) []string {
	w.t.Helper()
	page, err := w.svc.ListRuns(context.Background(), deployments.RunQuery{DeploymentID: id, Limit: 1000})
	require.NoError(w.t, err)
	var out []string
	for i := len(page.Items) - 1; i >= 0; i-- {
		r := page.Items[i]
		if r.ScheduledAt != nil {
			out = append(out, r.ScheduledAt.UTC().Format("15:04"))
		}
	}
	return out
}

func sleepUntil(t time.Time) {
	time.Sleep(time.Until(t))
	synctest.Wait()
}

// bubble start is 2000-01-01T00:00:00Z.
var t0 = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func at(hhmm string) time.Time {
	d, _ := time.Parse("15:04", hhmm)
	return t0.Add(time.Duration(d.Hour())*time.Hour + time.Duration(d.Minute())*time.Minute)
}

func TestSchedulerFiresAtTheRightInstants(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := startWorld(t, filepath.Join(t.TempDir(), "db"), sessionstest.New(map[string]int64{"agent_a": 1}), deployments.SchedulerConfig{})
		defer w.stop()
		d := w.create("*/5 * * * *", "UTC")
		sleepUntil(at("00:04").Add(59 * time.Second))
		assert.Empty(t, w.scheduledAt(d.ID), "nothing before the first instant")
		sleepUntil(at("00:11"))
		assert.Equal(t, []string{"00:05", "00:10"}, w.scheduledAt(d.ID))

		page, err := w.svc.ListRuns(context.Background(), deployments.RunQuery{DeploymentID: d.ID, Limit: 10})
		require.NoError(t, err)
		for _, r := range page.Items {
			assert.WithinDuration(t, *r.ScheduledAt, r.CreatedAt, 100*time.Millisecond, "an instant backend records the run right at the scheduled instant")
			assert.False(t, r.CreatedAt.Before(*r.ScheduledAt))
			assert.Equal(t, deployments.TriggerSchedule, r.Trigger)
			assert.NotEmpty(t, r.SessionID)
		}
		got, err := w.svc.Get(context.Background(), d.ID)
		require.NoError(t, err)
		require.NotNil(t, got.LastRunAt)
		assert.Equal(t, at("00:10"), got.LastRunAt.UTC())
		assert.Equal(t, at("00:15"), w.svc.Upcoming(got)[0])

		// Manual runs do not touch last_run_at.
		_, err = w.svc.RunNow(context.Background(), d.ID)
		require.NoError(t, err)
		got, err = w.svc.Get(context.Background(), d.ID)
		require.NoError(t, err)
		assert.Equal(t, at("00:10"), got.LastRunAt.UTC())
	})
}

func TestSchedulerPauseUnpauseNeverBackfills(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := startWorld(t, filepath.Join(t.TempDir(), "db"), sessionstest.New(map[string]int64{"agent_a": 1}), deployments.SchedulerConfig{})
		defer w.stop()
		ctx := context.Background()
		d := w.create("*/5 * * * *", "UTC")
		sleepUntil(at("00:06"))
		_, err := w.svc.Pause(ctx, d.ID)
		require.NoError(t, err)
		sleepUntil(at("00:32"))
		_, err = w.svc.Unpause(ctx, d.ID)
		require.NoError(t, err)
		sleepUntil(at("00:41"))
		assert.Equal(t, []string{"00:05", "00:35", "00:40"}, w.scheduledAt(d.ID))
	})
}

func TestSchedulerUpdateMovesNextFireAndArchiveStopsIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := startWorld(t, filepath.Join(t.TempDir(), "db"), sessionstest.New(map[string]int64{"agent_a": 1}), deployments.SchedulerConfig{})
		defer w.stop()
		ctx := context.Background()
		d := w.create("*/5 * * * *", "UTC")
		sleepUntil(at("00:07"))
		raw := json.RawMessage(`{"schedule":{"type":"cron","expression":"0 * * * *","timezone":"UTC"}}`)
		in, err := deployments.DecodeUpdate(raw)
		require.NoError(t, err)
		_, err = w.svc.Update(ctx, d.ID, in)
		require.NoError(t, err)
		sleepUntil(at("01:01"))
		assert.Equal(t, []string{"00:05", "01:00"}, w.scheduledAt(d.ID))

		_, err = w.svc.Archive(ctx, d.ID)
		require.NoError(t, err)
		sleepUntil(at("03:01"))
		assert.Equal(t, []string{"00:05", "01:00"}, w.scheduledAt(d.ID))
		assert.Zero(t, w.sched.Loop().Len(), "archive removes the deployment from the heap")
	})
}

func TestSchedulerAutoPausesOnErrorButNotOnRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		backend := sessionstest.New(map[string]int64{"agent_a": 1})
		w := startWorld(t, filepath.Join(t.TempDir(), "db"), backend, deployments.SchedulerConfig{})
		defer w.stop()
		ctx := context.Background()
		d := w.create("*/5 * * * *", "UTC")
		backend.FailNext(&sessions.RunError{Type: sessions.ErrSessionRateLimited, Message: "slow down"},
			&sessions.RunError{Type: sessions.ErrEnvironmentNotFound, Message: "gone"})
		sleepUntil(at("00:21"))
		assert.Equal(t, []string{"00:05", "00:10"}, w.scheduledAt(d.ID), "the rate limit kept it firing; the not-found paused it")
		got, err := w.svc.Get(ctx, d.ID)
		require.NoError(t, err)
		require.NotNil(t, got.PausedReason)
		assert.Equal(t, deployments.PausedError, got.PausedReason.Type)
		assert.Equal(t, sessions.ErrEnvironmentNotFound, got.PausedReason.ErrorType)

		// A manual run failing with the same error does not pause.
		d2 := w.create("0 0 1 1 *", "UTC")
		backend.FailNext(&sessions.RunError{Type: sessions.ErrEnvironmentNotFound, Message: "gone"})
		run, err := w.svc.RunNow(ctx, d2.ID)
		require.NoError(t, err)
		require.NotNil(t, run.Error)
		got2, err := w.svc.Get(ctx, d2.ID)
		require.NoError(t, err)
		assert.Nil(t, got2.PausedReason)
	})
}

func TestSchedulerRestartWithinAndBeyondMisfireGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "db")
		backend := sessionstest.New(map[string]int64{"agent_a": 1})
		cfg := deployments.SchedulerConfig{MisfireGrace: time.Minute}
		w := startWorld(t, path, backend, cfg)
		within := w.create("*/10 * * * *", "UTC")
		beyond := w.create("0 * * * *", "UTC")
		sleepUntil(at("00:09").Add(30 * time.Second))
		w.stop()

		// Down from 00:09:30 to 00:10:40: the 00:10 fire is 40 s old.
		sleepUntil(at("00:10").Add(40 * time.Second))
		w = startWorld(t, path, backend, cfg)
		sleepUntil(at("00:10").Add(41 * time.Second))
		assert.Equal(t, []string{"00:10"}, w.scheduledAt(within.ID), "a miss younger than the grace runs once at startup")
		w.stop()

		// Down from 00:10:41 to 02:31:30: 00:20…02:30 and 01:00, 02:00 are all older than the grace.
		sleepUntil(at("02:31").Add(30 * time.Second))
		w = startWorld(t, path, backend, cfg)
		defer w.stop()
		sleepUntil(at("02:31").Add(31 * time.Second))
		assert.Equal(t, []string{"00:10"}, w.scheduledAt(within.ID), "older misses are never backfilled")
		assert.Empty(t, w.scheduledAt(beyond.ID))
		sleepUntil(at("03:01"))
		assert.Equal(t, []string{"00:10", "02:40", "02:50", "03:00"}, w.scheduledAt(within.ID))
		assert.Equal(t, []string{"03:00"}, w.scheduledAt(beyond.ID))
	})
}

func TestSchedulerDSTFixedTimeFiresOncePerLocalDay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The loop wakes at least every MaxSleep to notice wall-clock steps,
		// which a bubble never takes: at the default minute, sleeping through
		// 94 days was 135,000 idle wakeups and most of the test's time.
		w := startWorld(t, filepath.Join(t.TempDir(), "db"), sessionstest.New(map[string]int64{"agent_a": 1}),
			deployments.SchedulerConfig{MaxSleep: time.Hour})
		defer w.stop()
		// Bubble time is 2000-01-01; New York springs forward on 2000-04-02
		// and falls back on 2000-10-29. Sleep through both.
		d := w.create("30 2 * * *", "America/New_York")
		sleepUntil(time.Date(2000, 4, 4, 0, 0, 0, 0, time.UTC))
		page, err := w.svc.ListRuns(context.Background(), deployments.RunQuery{DeploymentID: d.ID, Limit: 1000})
		require.NoError(t, err)
		ny, _ := time.LoadLocation("America/New_York")
		days := map[string]int{}
		for _, r := range page.Items {
			days[r.ScheduledAt.In(ny).Format("2006-01-02")]++
		}
		assert.Len(t, days, 94, "one fire per local day from Jan 1 to Apr 3")
		for day, n := range days {
			assert.Equal(t, 1, n, day)
		}
		// On the spring-forward day 02:30 does not exist: it fires at the transition (03:00 EDT = 07:00Z).
		for _, r := range page.Items {
			if r.ScheduledAt.In(ny).Format("2006-01-02") == "2000-04-02" {
				assert.Equal(t, time.Date(2000, 4, 2, 7, 0, 0, 0, time.UTC), r.ScheduledAt.UTC())
			}
		}
	})
}

// Regression: plans arrive after their commits, possibly out of order. With
// pause and unpause racing, the loop must end up holding exactly what is
// stored: an active deployment is always planned.
func TestSchedulerConcurrentPauseUnpauseKeepsThePlanInStep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := startWorld(t, filepath.Join(t.TempDir(), "db"), sessionstest.New(map[string]int64{"agent_a": 1}), deployments.SchedulerConfig{})
		defer w.stop()
		ctx := context.Background()
		d := w.create("0 * * * *", "UTC")
		for range 300 {
			done := make(chan struct{}, 2)
			go func() { _, _ = w.svc.Pause(ctx, d.ID); done <- struct{}{} }()
			go func() { _, _ = w.svc.Unpause(ctx, d.ID); done <- struct{}{} }()
			<-done
			<-done
			got, err := w.svc.Get(ctx, d.ID)
			require.NoError(t, err)
			assert.Equal(t, got.Schedulable(), w.sched.Loop().Len() == 1, "stored %s, in loop %v", got.Status(), w.sched.Loop().Len() == 1)
		}
		_, err := w.svc.Unpause(ctx, d.ID)
		require.NoError(t, err)
		sleepUntil(at("01:01"))
		assert.Equal(t, []string{"01:00"}, w.scheduledAt(d.ID))
	})
}

// Regression: an update that does not touch the schedule must not move a
// pending jittered fire to the next occurrence.
func TestSchedulerUpdateDuringJitterKeepsThePendingFire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := startWorld(t, filepath.Join(t.TempDir(), "db"), sessionstest.New(map[string]int64{"agent_a": 1}),
			deployments.SchedulerConfig{Jitter: 4 * time.Minute})
		defer w.stop()
		// Ids are random; take one whose 00:05 fire is jittered past 00:05:01.
		d := w.create("*/5 * * * *", "UTC")
		for schedule.Jitter(d.ID, at("00:05"), at("00:10"), 4*time.Minute) < 2*time.Second {
			_, err := w.svc.Archive(context.Background(), d.ID)
			require.NoError(t, err)
			d = w.create("*/5 * * * *", "UTC")
		}
		sleepUntil(at("00:05").Add(time.Second))
		require.Empty(t, w.scheduledAt(d.ID), "still waiting out its jitter")
		in, err := deployments.DecodeUpdate([]byte(`{"description":"x"}`))
		require.NoError(t, err)
		_, err = w.svc.Update(context.Background(), d.ID, in)
		require.NoError(t, err)
		sleepUntil(at("00:15"))
		got := w.scheduledAt(d.ID)
		require.NotEmpty(t, got)
		assert.Equal(t, "00:05", got[0], "the pending fire still ran")
	})
}
