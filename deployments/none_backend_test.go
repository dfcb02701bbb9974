package deployments

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/sessions"
)

// backend: none records every scheduled run with an error saying so, but
// never pauses the deployment: its schedule is intact once a backend is
// configured (it used to auto-pause on the first fire with unknown_error).
func TestBackendNoneRecordsScheduledRunsWithoutPausing(t *testing.T) {
	s, st := newTestService(t, filepath.Join(t.TempDir(), "db"), sessions.Unconfigured{})
	defer st.Close()
	ctx := context.Background()
	d := createScheduled(t, s)
	for i, at := range []time.Time{
		time.Date(2030, 1, 1, 0, 5, 0, 0, time.UTC),
		time.Date(2030, 1, 1, 0, 10, 0, 0, time.UTC),
	} {
		res, err := s.Fire(ctx, d.ID, at, d.Generation, nil)
		require.NoError(t, err)
		require.NotNil(t, res.Run, "fire %d", i)
		require.NotNil(t, res.Run.Error)
		assert.Equal(t, sessions.ErrSessionCreationRejected, res.Run.Error.Type)
		assert.Contains(t, res.Run.Error.Message, "no session backend is configured")
		got, err := s.Get(ctx, d.ID)
		require.NoError(t, err)
		assert.Nil(t, got.PausedReason, "fire %d paused the deployment", i)
	}
}
