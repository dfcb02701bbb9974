package deployments

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
)

// slowRefs is a backend whose reference check waits until released, like an
// upstream that hangs.
type slowRefs struct {
	*sessionstest.Backend
	entered chan struct{}
	release chan struct{}
}

func (b *slowRefs) CheckReferences(ctx context.Context, refs sessions.References) error {
	if refs.EnvironmentID == "env_slow" {
		close(b.entered)
		<-b.release
	}
	return b.Backend.CheckReferences(ctx, refs)
}

// Regression: Update held the rotation read lock across the backend's
// reference check, so a slow upstream blocked key rotation (and, behind the
// waiting rotation, every create).
func TestUpdateDoesNotHoldRotationAcrossBackendCalls(t *testing.T) {
	b := &slowRefs{Backend: sessionstest.New(map[string]int64{"agent_a": 1}),
		entered: make(chan struct{}), release: make(chan struct{})}
	s, st := newTestService(t, filepath.Join(t.TempDir(), "db"), b)
	defer st.Close()
	d := createScheduled(t, s)

	in, err := DecodeUpdate([]byte(`{"environment_id":"env_slow"}`))
	require.NoError(t, err)
	updated := make(chan error, 1)
	go func() { _, err := s.Update(context.Background(), d.ID, in); updated <- err }()
	<-b.entered

	rotated := make(chan error, 1)
	go func() {
		_, err := s.RotateKeys(func() (*crypto.Keyring, error) { return nil, errors.New("rotation ran") })
		rotated <- err
	}()
	select {
	case err := <-rotated:
		require.EqualError(t, err, "rotation ran")
	case <-time.After(30 * time.Second):
		t.Fatal("a key rotation waits for a backend call of a concurrent update")
	}
	close(b.release)
	require.NoError(t, <-updated)
}
