package deployments_test

import (
	"bytes"
	"context"
	"encoding/json"
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
	"github.com/sandbox0/sandbox0d/sessions/upstream"
	"github.com/sandbox0/sandbox0d/store"
)

// A run's writer dies between its intent and its record, with the upstream
// backend: the next process (in a cluster, the next leader) resolves the
// intent by looking for the run's session upstream, never by creating one.

// recoverRig is one store file and the strict fake upstream, in a synctest
// bubble (the fake in memory, so timeouts run on the bubble's clock).
type recoverRig struct {
	t      *testing.T
	fake   *fakeupstream.Server
	st     *store.Store
	sealer deployments.Sealer
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newRecoverRig(t *testing.T) *recoverRig {
	fake := fakeupstream.NewInMemory(t)
	fake.AddAgent("agent_a", 1)
	fake.AddEnvironment("env")
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{NoSync: true})
	require.NoError(t, err)
	k, err := crypto.GenerateKeyring()
	require.NoError(t, err)
	return &recoverRig{t: t, fake: fake, st: st, sealer: k, logs: &syncBuffer{}}
}

func (r *recoverRig) backend() *upstream.Backend {
	b, err := upstream.New(upstream.Config{URL: r.fake.URL, APIKey: r.fake.APIKey(), HTTPClient: r.fake.Client(),
		RetryWindow: 30 * time.Second, RequestTimeout: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(r.logs, nil))})
	require.NoError(r.t, err)
	return b
}

// service is a daemon process on the rig's file, using backend b.
func (r *recoverRig) service(b sessions.Backend, lookupTimeout time.Duration) *deployments.Service {
	return deployments.NewService(deployments.Config{Store: r.st, Backend: b, Sealer: r.sealer,
		RecoverLookupTimeout: lookupTimeout, Logger: slog.New(slog.NewTextHandler(r.logs, nil))})
}

func (r *recoverRig) deployment(svc *deployments.Service) *deployments.Deployment {
	body, _ := json.Marshal(map[string]any{
		"name": "dies", "agent": map[string]any{"id": "agent_a", "version": 1}, "environment_id": "env",
		"initial_events": []any{map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": "go"}}}},
	})
	in, err := deployments.DecodeCreate(body)
	require.NoError(r.t, err)
	d, err := svc.Create(context.Background(), in)
	require.NoError(r.t, err)
	return d
}

func (r *recoverRig) runs(svc *deployments.Service, deploymentID string) []*deployments.Run {
	page, err := svc.ListRuns(context.Background(), deployments.RunQuery{DeploymentID: deploymentID, Limit: 10})
	require.NoError(r.t, err)
	return page.Items
}

// dyingBackend is the writer's backend: it lets the run go as far as
// create says (through the real upstream backend, or not at all), then
// never returns, like a process killed before its record.
type dyingBackend struct {
	sessions.Backend
	create  bool
	reached chan string
}

func (d dyingBackend) CreateSession(ctx context.Context, req sessions.CreateRequest) (string, error) {
	id := ""
	if d.create {
		var err error
		if id, err = d.Backend.CreateSession(ctx, req); err != nil {
			panic(err)
		}
	}
	d.reached <- id
	<-ctx.Done() // "dead" until the test ends
	return "", ctx.Err()
}

// dieDuringRun starts a manual run on a writer that dies as dyingBackend
// says, and returns the session it created ("" when none) once it died.
func (r *recoverRig) dieDuringRun(deploymentID string, create bool) (sessionID string, writerGone func()) {
	writer := dyingBackend{Backend: r.backend(), create: create, reached: make(chan string, 1)}
	svc := r.service(writer, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = svc.RunNow(ctx, deploymentID)
	}()
	sessionID = <-writer.reached
	return sessionID, func() { cancel(); <-done }
}

func TestRecoveredUpstreamIntentResolvesToTheSessionItCreated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecoverRig(t)
		defer r.st.Close()
		next := r.service(r.backend(), 0)
		d := r.deployment(next)
		// Another run of the same agent first: the lookup must pick the
		// session of the run, not any recent one.
		other, err := next.RunNow(context.Background(), d.ID)
		require.NoError(t, err)
		require.NotEmpty(t, other.SessionID)

		sessionID, gone := r.dieDuringRun(d.ID, true)
		defer gone()
		require.NotEmpty(t, sessionID)

		n, err := next.RecoverIntents()
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		runs := r.runs(next, d.ID)
		require.Len(t, runs, 2)
		assert.Equal(t, sessionID, runs[0].SessionID, "the dead writer's run names the session it created")
		assert.Nil(t, runs[0].Error, "the run succeeded")
		assert.Equal(t, other.SessionID, runs[1].SessionID)
		assert.Equal(t, 2, r.fake.SessionsCreated(), "no session created again")
		assert.Empty(t, r.fake.RequestsTo(fakeupstream.RouteCreateSession)[2:], "the recovery sent no create")
		assert.Contains(t, r.logs.String(), "resolved an interrupted run to the session it created")
	})
}

func TestRecoveredUpstreamIntentWithoutSessionStaysUnknown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecoverRig(t)
		defer r.st.Close()
		next := r.service(r.backend(), 0)
		d := r.deployment(next)
		other, err := next.RunNow(context.Background(), d.ID)
		require.NoError(t, err)

		sessionID, gone := r.dieDuringRun(d.ID, false)
		defer gone()
		require.Empty(t, sessionID)

		n, err := next.RecoverIntents()
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		runs := r.runs(next, d.ID)
		require.Len(t, runs, 2)
		assert.Empty(t, runs[0].SessionID)
		require.NotNil(t, runs[0].Error)
		assert.Equal(t, sessions.ErrUnknown, runs[0].Error.Type)
		assert.NotContains(t, runs[0].Error.Message, "looking for it failed", "the lookup answered: no session")
		assert.Equal(t, other.SessionID, runs[1].SessionID)
		assert.Len(t, r.fake.RequestsTo(fakeupstream.RouteListSessions), 1, "one lookup")
		assert.Equal(t, 1, r.fake.SessionsCreated(), "nothing created by the recovery")
	})
}

// An upstream that fails the list, or never answers it: the run records
// unknown_error, saying why, and the recovery returns once the lookup
// timeout has passed, not later.
func TestRecoveredUpstreamIntentWhenTheLookupFails(t *testing.T) {
	for name, fault := range map[string]fakeupstream.Fault{
		"500":  {Status: http.StatusInternalServerError, Message: "boom"},
		"hang": {Hang: true},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRecoverRig(t)
				defer r.st.Close()
				const timeout = 3 * time.Second
				next := r.service(r.backend(), timeout)
				d := r.deployment(next)
				sessionID, gone := r.dieDuringRun(d.ID, true)
				defer gone()
				require.NotEmpty(t, sessionID)

				r.fake.InjectFault(fakeupstream.RouteListSessions, -1, fault)
				start := time.Now()
				n, err := next.RecoverIntents()
				took := time.Since(start) // the bubble's clock: exact, not measured
				require.NoError(t, err)
				assert.Equal(t, 1, n)
				assert.LessOrEqual(t, took, timeout, "the lookup is bounded by its timeout")
				runs := r.runs(next, d.ID)
				require.Len(t, runs, 1)
				require.NotNil(t, runs[0].Error)
				assert.Equal(t, sessions.ErrUnknown, runs[0].Error.Type)
				assert.Empty(t, runs[0].SessionID)
				assert.Contains(t, runs[0].Error.Message, "looking for it failed")
				assert.Contains(t, r.logs.String(), "could not tell whether an interrupted run created its session")
				assert.Equal(t, 1, r.fake.SessionsCreated(), "nothing created by the recovery")
				r.fake.Release()
			})
		})
	}
}

// The writer died after creating the session and before delivering its
// initial events: the session exists but is not the run's success.
func TestRecoveredUpstreamIntentWhoseEventsNeverArrived(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecoverRig(t)
		defer r.st.Close()
		next := r.service(r.backend(), 0)
		d := r.deployment(next)
		r.fake.InjectFault(fakeupstream.RouteSendEvents, 1, fakeupstream.Fault{Hang: true})
		writer := r.service(r.backend(), 0)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = writer.RunNow(ctx, d.ID)
		}()
		require.NoError(t, r.fake.AwaitHung(context.Background(), 1))

		n, err := next.RecoverIntents()
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		runs := r.runs(next, d.ID)
		require.Len(t, runs, 1)
		require.NotNil(t, runs[0].Error)
		assert.Equal(t, sessions.ErrUnknown, runs[0].Error.Type)
		assert.Empty(t, runs[0].SessionID)
		assert.Contains(t, runs[0].Error.Message, "holds no initial events")

		// The writer was only paused: it finishes, and its record is
		// dropped (the intent is gone), so the run is recorded once.
		cancel()
		r.fake.Release()
		<-done
		assert.Len(t, r.runs(next, d.ID), 1)
	})
}
