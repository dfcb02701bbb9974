package main

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/store"
)

// Regression test for a bug `go run ./bench scale` found (fixed in
// 70e4d60): with 100,000 deployments every run retention pass took about
// 20 s with nothing to delete, and a SIGTERM during it waited for the whole
// pass, because deployments.(*Service).PruneRuns opened one read-write
// bbolt transaction (a meta page write and an fdatasync) per deployment.
func TestRetentionPassWithNothingToPruneCommitsNoWrites(t *testing.T) {
	t.Parallel()
	st, err := store.Open(filepath.Join(t.TempDir(), store.FileName), store.Options{NoSync: true})
	require.NoError(t, err)
	defer st.Close()
	svc := deployments.NewService(deployments.Config{Store: st, Backend: sessions.Unconfigured{}})
	const n = 200
	for i := range n {
		in, err := deployments.DecodeCreate(fmt.Appendf(nil, `{"name":"d%d","agent":{"type":"agent","id":"agent_x","version":1},
			"environment_id":"env_x","initial_events":[{"type":"user.message","content":[{"type":"text","text":"hi"}]}]}`, i))
		require.NoError(t, err)
		_, err = svc.Create(t.Context(), in)
		require.NoError(t, err)
	}
	before := lastTxID(t, st)
	pruned, err := svc.PruneRuns(t.Context(), deployments.Retention{MaxPerDeployment: 1000, MaxAge: 90 * 24 * time.Hour})
	require.NoError(t, err)
	require.Zero(t, pruned)
	require.LessOrEqual(t, lastTxID(t, st)-before, 1,
		"a retention pass over %d deployments with no runs must not commit a write transaction per deployment", n)
}

func lastTxID(t *testing.T, st *store.Store) int {
	t.Helper()
	return st.LastTxID()
}
