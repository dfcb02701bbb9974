package deployments

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/store"
)

func newTestService(t *testing.T, path string, b sessions.Backend) (*Service, *store.Store) {
	t.Helper()
	st, err := store.Open(path, store.Options{})
	require.NoError(t, err)
	return NewService(Config{Store: st, Backend: b}), st
}

func createScheduled(t *testing.T, s *Service) *Deployment {
	t.Helper()
	data, _ := json.Marshal(map[string]any{
		"name": "s", "agent": map[string]any{"id": "agent_a", "version": 1}, "environment_id": "env",
		"initial_events": []any{map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": "go"}}}},
		"schedule":       map[string]any{"type": "cron", "expression": "*/5 * * * *", "timezone": "UTC"},
	})
	in, err := DecodeCreate(data)
	require.NoError(t, err)
	d, err := s.Create(context.Background(), in)
	require.NoError(t, err)
	return d
}

// A crash after the intent and before the backend call resolves to exactly
// one unknown_error run at the next start, and the backend is never called.
func TestCrashAfterIntentResolvesToOneUnknownErrorRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	backend := sessionstest.New(map[string]int64{"agent_a": 1})
	s, st := newTestService(t, path, backend)
	d := createScheduled(t, s)
	at := time.Date(2030, 1, 1, 0, 5, 0, 0, time.UTC)
	_, run, reason, err := s.fireIntent(d.ID, at, d.Generation)
	require.NoError(t, err)
	require.Empty(t, reason)
	require.NotNil(t, run)
	require.NoError(t, st.Close()) // "crash": the backend was never called

	s2, st2 := newTestService(t, path, backend)
	defer st2.Close()
	n, err := s2.RecoverIntents()
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	got, err := s2.GetRun(context.Background(), run.ID)
	require.NoError(t, err)
	require.NotNil(t, got.Error)
	assert.Equal(t, sessions.ErrUnknown, got.Error.Type)
	assert.Contains(t, got.Error.Message, "daemon stopped during session creation")
	assert.Zero(t, backend.Created())

	// The same fire is refused afterwards: at most one run per (deployment, scheduled_at).
	res, err := s2.Fire(context.Background(), d.ID, at, d.Generation, nil)
	require.NoError(t, err)
	assert.Equal(t, FireSkipped, res.Outcome)
	assert.Zero(t, backend.Created())
	n, err = s2.RecoverIntents()
	require.NoError(t, err)
	assert.Zero(t, n, "nothing left unresolved")
}

func TestFireIsSkippedWhenThePlanIsStale(t *testing.T) {
	backend := sessionstest.New(map[string]int64{"agent_a": 1})
	s, st := newTestService(t, filepath.Join(t.TempDir(), "db"), backend)
	defer st.Close()
	ctx := context.Background()
	d := createScheduled(t, s)
	at := time.Date(2030, 1, 1, 0, 5, 0, 0, time.UTC)
	_, err := s.Pause(ctx, d.ID)
	require.NoError(t, err)
	res, err := s.Fire(ctx, d.ID, at, d.Generation, nil)
	require.NoError(t, err)
	assert.Equal(t, FireSkipped, res.Outcome)
	assert.Equal(t, "deployment is paused", res.Reason)

	cur, err := s.Unpause(ctx, d.ID)
	require.NoError(t, err)
	res, err = s.Fire(ctx, d.ID, at, d.Generation, nil)
	require.NoError(t, err)
	assert.Equal(t, FireSkipped, res.Outcome, "planned under an older generation")
	res, err = s.Fire(ctx, d.ID, at, cur.Generation, nil)
	require.NoError(t, err)
	assert.Equal(t, FireSucceeded, res.Outcome)
	res, err = s.Fire(ctx, d.ID, at, cur.Generation, nil)
	require.NoError(t, err)
	assert.Equal(t, FireSkipped, res.Outcome, "the same scheduled fire twice")
	assert.Equal(t, int64(1), backend.Created())
}

// Plans reach the loop after their commits and may arrive out of order: a
// plan of an older generation never overrides a newer one.
func TestLatePlansOfOlderGenerationsAreDropped(t *testing.T) {
	backend := sessionstest.New(map[string]int64{"agent_a": 1})
	s, st := newTestService(t, filepath.Join(t.TempDir(), "db"), backend)
	defer st.Close()
	sc := NewScheduler(s, SchedulerConfig{})
	d := createScheduled(t, s) // generation 1, planned
	require.Equal(t, 1, sc.Loop().Len())

	paused := *d
	paused.Generation = 2
	paused.PausedReason = &PausedReason{Type: PausedManual}
	active := *d
	active.Generation = 3

	sc.replan(&active, planAfterChange) // unpause (gen 3) arrives first…
	sc.replan(&paused, planAfterChange) // …then the older pause (gen 2)
	assert.Equal(t, 1, sc.Loop().Len(), "the late pause must not remove the newer plan")

	sc.replan(&paused, planNext) // a late fire-path plan of an older generation
	assert.Equal(t, 1, sc.Loop().Len())

	paused.Generation = 4
	sc.replan(&paused, planAfterChange)
	assert.Zero(t, sc.Loop().Len(), "a newer pause removes it")
}

// A fire decides from a snapshot of the document taken before its
// transaction. A change committed in between (here a pause, then a rename
// that keeps the plan's generation valid) must be seen: the transaction plans
// again from what it reads instead of writing the stale snapshot back.
func TestFireSeesChangesMadeAfterItsSnapshot(t *testing.T) {
	ctx := context.Background()
	s, st := newTestService(t, filepath.Join(t.TempDir(), "db"), sessionstest.New(map[string]int64{"agent_a": 1}))
	defer st.Close()
	at := time.Date(2030, 1, 1, 0, 5, 0, 0, time.UTC)

	paused := createScheduled(t, s)
	s.afterFireSnapshot = func(id string) {
		_, err := s.Pause(ctx, id)
		require.NoError(t, err)
	}
	_, run, reason, err := s.fireIntent(paused.ID, at, paused.Generation)
	require.NoError(t, err)
	assert.Nil(t, run)
	assert.Equal(t, "deployment is paused", reason)
	got, err := s.Get(ctx, paused.ID)
	require.NoError(t, err)
	assert.NotNil(t, got.PausedReason, "the fire must not write its pre-pause snapshot back")
	assert.Nil(t, got.LastRunAt)

	described := createScheduled(t, s)
	s.afterFireSnapshot = func(id string) {
		require.NoError(t, st.Write(func(tx *store.Tx) error {
			d, err := getDeployment(tx, id)
			if err != nil {
				return err
			}
			d.Description = "changed meanwhile" // same generation: the fire still goes ahead
			return putDeployment(tx, d)
		}))
	}
	_, run, reason, err = s.fireIntent(described.ID, at, described.Generation)
	require.NoError(t, err)
	require.Empty(t, reason)
	require.NotNil(t, run)
	got, err = s.Get(ctx, described.ID)
	require.NoError(t, err)
	assert.Equal(t, "changed meanwhile", got.Description, "the fire must keep the change made after its snapshot")
	require.NotNil(t, got.LastRunAt)
	assert.Equal(t, at, got.PlanFrom)
}
