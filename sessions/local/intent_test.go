package local

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stallingBackend creates the session on the local backend, then never
// returns: the daemon "crashes" after the session exists and before its
// run is recorded.
type stallingBackend struct {
	*Backend
	created chan string
	release chan struct{}
}

func (s stallingBackend) CreateSession(ctx context.Context, req sessions.CreateRequest) (string, error) {
	id, err := s.Backend.CreateSession(ctx, req)
	s.created <- id
	<-s.release
	return id, err
}

// TestCrashIntentResolvesToTheLocalSession: a run whose intent was left by a
// crash after its local session was created resolves at the next start to
// that session, a successful run, not unknown_error.
func TestCrashIntentResolvesToTheLocalSession(t *testing.T) {
	rig := newRig(t, []Agent{shAgent("agent_quick", "echo hi")}, nil)
	stall := stallingBackend{Backend: rig.b, created: make(chan string, 1), release: make(chan struct{})}
	svc := deployments.NewService(deployments.Config{Store: rig.st, Backend: stall})
	body, _ := json.Marshal(map[string]any{
		"name": "crashy", "agent": map[string]any{"id": "agent_quick", "version": 1}, "environment_id": testEnvironment,
		"initial_events": []any{map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": "go"}}}},
	})
	in, err := deployments.DecodeCreate(body)
	require.NoError(t, err)
	d, err := svc.Create(t.Context(), in)
	require.NoError(t, err)

	stuck := make(chan struct{})
	go func() {
		defer close(stuck)
		_, _ = svc.RunNow(context.Background(), d.ID)
	}()
	sessionID := <-stall.created
	require.NotEmpty(t, sessionID)
	rig.waitDone(sessionID)

	// The next daemon process: same file, the intent still unresolved.
	svc2 := deployments.NewService(deployments.Config{Store: rig.st, Backend: rig.b})
	n, err := svc2.RecoverIntents()
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	runs, err := svc2.ListRuns(t.Context(), deployments.RunQuery{DeploymentID: d.ID, Limit: 10})
	require.NoError(t, err)
	require.Len(t, runs.Items, 1)
	assert.Equal(t, sessionID, runs.Items[0].SessionID)
	assert.Nil(t, runs.Items[0].Error, "the run succeeded: its session exists")

	close(stall.release)
	<-stuck
}
