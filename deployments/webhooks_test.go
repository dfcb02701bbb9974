package deployments

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks/event"
)

type testSink struct {
	enabled  atomic.Bool
	notified atomic.Int32
}

func (s *testSink) Enabled() bool { return s.enabled.Load() }
func (s *testSink) Notify()       { s.notified.Add(1) }

// outboxReader returns the events appended since the last call.
type outboxReader struct {
	st   *store.Store
	seen int
}

func (o *outboxReader) next(t *testing.T) []string {
	t.Helper()
	var all []store.WebhookEvent
	require.NoError(t, o.st.View(func(tx *store.Tx) error {
		var err error
		all, err = tx.OutboxWebhookEvents(1 << 20)
		return err
	}))
	var out []string
	for _, e := range all[o.seen:] {
		out = append(out, e.Type+" "+e.ObjectID)
	}
	o.seen = len(all)
	return out
}

// Every reported change appends its event in its own transaction, exactly
// once, naming the object; a rejected change or a no-op appends nothing.
func TestEveryChangeAppendsItsEvent(t *testing.T) {
	backend := sessionstest.New(map[string]int64{"agent_a": 1})
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{})
	require.NoError(t, err)
	defer func() { require.Empty(t, st.Check()); _ = st.Close() }()
	sink := &testSink{}
	sink.enabled.Store(true)
	s := NewService(Config{Store: st, Backend: backend, Events: sink, Logger: discardLogger()})
	ctx := context.Background()
	ob := &outboxReader{st: st}

	d := createScheduled(t, s)
	assert.Equal(t, []string{event.DeploymentCreated + " " + d.ID}, ob.next(t))

	up, err := DecodeUpdate([]byte(`{"name":"renamed"}`))
	require.NoError(t, err)
	_, err = s.Update(ctx, d.ID, up)
	require.NoError(t, err)
	assert.Equal(t, []string{event.DeploymentUpdated + " " + d.ID}, ob.next(t))

	_, err = s.Pause(ctx, d.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{event.DeploymentPaused + " " + d.ID}, ob.next(t))
	_, err = s.Pause(ctx, d.ID)
	require.NoError(t, err)
	assert.Empty(t, ob.next(t), "pausing a paused deployment changes nothing")

	_, err = s.Unpause(ctx, d.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{event.DeploymentUnpaused + " " + d.ID}, ob.next(t))
	_, err = s.Unpause(ctx, d.ID)
	require.NoError(t, err)
	assert.Empty(t, ob.next(t))

	run, err := s.RunNow(ctx, d.ID)
	require.NoError(t, err)
	require.Nil(t, run.Error)
	assert.Equal(t, []string{event.RunStarted + " " + run.ID, event.RunSucceeded + " " + run.ID}, ob.next(t))

	backend.FailNext(&sessions.RunError{Type: sessions.ErrEnvironmentNotFound, Message: "gone"})
	run, err = s.RunNow(ctx, d.ID)
	require.NoError(t, err)
	require.NotNil(t, run.Error)
	assert.Equal(t, []string{event.RunStarted + " " + run.ID, event.RunFailed + " " + run.ID}, ob.next(t),
		"a manual run never pauses")

	// A scheduled fire failing with an auto-pause error: started, failed, paused.
	cur, err := s.Get(ctx, d.ID)
	require.NoError(t, err)
	backend.FailNext(&sessions.RunError{Type: sessions.ErrEnvironmentNotFound, Message: "gone"})
	res, err := s.Fire(ctx, d.ID, time.Date(2030, 1, 1, 0, 5, 0, 0, time.UTC), cur.Generation, nil)
	require.NoError(t, err)
	require.Equal(t, FirePaused, res.Outcome)
	assert.Equal(t, []string{event.RunStarted + " " + res.Run.ID, event.RunFailed + " " + res.Run.ID,
		event.DeploymentPaused + " " + d.ID}, ob.next(t))

	// A skipped fire (paused deployment) commits nothing to announce.
	res, err = s.Fire(ctx, d.ID, time.Date(2030, 1, 1, 0, 10, 0, 0, time.UTC), res.Deployment.Generation, nil)
	require.NoError(t, err)
	require.Equal(t, FireSkipped, res.Outcome)
	assert.Empty(t, ob.next(t))

	// A manual pause replacing the error pause is not a new pause.
	_, err = s.Pause(ctx, d.ID)
	require.NoError(t, err)
	assert.Empty(t, ob.next(t))

	_, err = s.Archive(ctx, d.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{event.DeploymentArchived + " " + d.ID}, ob.next(t))
	_, err = s.Archive(ctx, d.ID)
	require.NoError(t, err)
	assert.Empty(t, ob.next(t), "archiving twice is a no-op")

	// Rejected changes append nothing.
	_, err = s.Update(ctx, d.ID, up)
	require.Equal(t, KindConflict, KindOf(err))
	_, err = s.Pause(ctx, d.ID)
	require.Equal(t, KindConflict, KindOf(err))
	_, err = s.Unpause(ctx, d.ID)
	require.Equal(t, KindConflict, KindOf(err))
	_, err = s.RunNow(ctx, d.ID)
	require.Equal(t, KindConflict, KindOf(err))
	_, err = s.Update(ctx, "depl_missing", up)
	require.Equal(t, KindNotFound, KindOf(err))
	bad, _ := json.Marshal(map[string]any{"name": "x", "agent": "agent_unknown", "environment_id": "env",
		"initial_events": []any{map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": "go"}}}}})
	in, err := DecodeCreate(bad)
	require.NoError(t, err)
	_, err = s.Create(ctx, in)
	require.Equal(t, KindInvalid, KindOf(err), "unknown agent")
	assert.Empty(t, ob.next(t), "a rejected change announces nothing")
	assert.Positive(t, sink.notified.Load())

	// With no endpoint configured nothing is appended at all.
	sink.enabled.Store(false)
	createScheduled(t, s)
	assert.Empty(t, ob.next(t))
}

// A run intent left by a crash resolves to a failed run, and that is
// announced; the started event was committed with the intent.
func TestRecoveredIntentAnnouncesFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	backend := sessionstest.New(map[string]int64{"agent_a": 1})
	sink := &testSink{}
	sink.enabled.Store(true)
	st, err := store.Open(path, store.Options{})
	require.NoError(t, err)
	s := NewService(Config{Store: st, Backend: backend, Events: sink, Logger: discardLogger()})
	d := createScheduled(t, s)
	_, run, _, err := s.fireIntent(d.ID, time.Date(2030, 1, 1, 0, 5, 0, 0, time.UTC), d.Generation)
	require.NoError(t, err)
	require.NoError(t, st.Close()) // crash before the backend call

	st2, err := store.Open(path, store.Options{})
	require.NoError(t, err)
	defer st2.Close()
	s2 := NewService(Config{Store: st2, Backend: backend, Events: sink, Logger: discardLogger()})
	_, err = s2.RecoverIntents()
	require.NoError(t, err)
	ob := &outboxReader{st: st2}
	assert.Equal(t, []string{event.DeploymentCreated + " " + d.ID, event.RunStarted + " " + run.ID,
		event.RunFailed + " " + run.ID}, ob.next(t))
}

// A write transaction that fails after appending leaves no event: the
// append is part of the transaction, not a side effect of it.
func TestAbortedTransactionLeavesNoEvent(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{})
	require.NoError(t, err)
	defer st.Close()
	boom := errors.New("boom")
	err = st.Update(func(tx *store.Tx) error {
		if err := tx.AppendWebhookEvent(store.WebhookEvent{ID: event.NewID(), Type: event.DeploymentCreated, ObjectID: "depl_x", CreatedAt: time.Now()}); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	assert.Empty(t, (&outboxReader{st: st}).next(t))

	// The same id appended twice (a transaction function run again) is
	// delivered once: the fan-out drops the duplicate.
	id := event.NewID()
	for range 2 {
		require.NoError(t, st.Batch(func(tx *store.Tx) error {
			return tx.AppendWebhookEvent(store.WebhookEvent{ID: id, Type: event.DeploymentCreated, ObjectID: "depl_x", CreatedAt: time.Now()})
		}))
	}
	require.NoError(t, st.Update(func(tx *store.Tx) error {
		events, err := tx.OutboxWebhookEvents(10)
		if err != nil {
			return err
		}
		require.Len(t, events, 2)
		for _, e := range events {
			if err := tx.FanOutWebhookEvent(e, []string{"https://hooks.example/x"}, time.Now()); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, st.View(func(tx *store.Tx) error {
		assert.Zero(t, tx.CountWebhookOutbox())
		assert.Equal(t, 1, tx.CountWebhookPending("https://hooks.example/x"))
		return nil
	}))
}
