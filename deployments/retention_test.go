package deployments

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/store"
)

func countRuns(t *testing.T, s *Service, depl string) int {
	t.Helper()
	page, err := s.ListRuns(context.Background(), RunQuery{DeploymentID: depl, Limit: 1000})
	require.NoError(t, err)
	return len(page.Items)
}

func TestPruneKeepsTheNewestRunsPerDeploymentAndDropsOldOnes(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{NoSync: true, MaxBatchDelay: time.Microsecond})
	require.NoError(t, err)
	defer st.Close()
	s := NewService(Config{Store: st, Backend: sessionstest.New(map[string]int64{"agent_a": 1}), Now: clock})
	a, b := createScheduled(t, s), createScheduled(t, s)
	for i := range 30 {
		now = now.Add(time.Hour)
		_, err := s.RunNow(context.Background(), a.ID)
		require.NoError(t, err)
		if i < 5 {
			_, err = s.RunNow(context.Background(), b.ID)
			require.NoError(t, err)
		}
		// Scheduled fires too, so their (deployment, scheduled_at) claims are released.
		_, err = s.Fire(context.Background(), a.ID, now.Truncate(time.Minute), a.Generation, nil)
		require.NoError(t, err)
		a, _ = s.Get(context.Background(), a.ID)
	}
	require.Equal(t, 60, countRuns(t, s, a.ID))
	require.Equal(t, 5, countRuns(t, s, b.ID))

	n, err := s.PruneRuns(context.Background(), Retention{MaxPerDeployment: 20})
	require.NoError(t, err)
	assert.Equal(t, 40, n)
	assert.Equal(t, 20, countRuns(t, s, a.ID))
	assert.Equal(t, 5, countRuns(t, s, b.ID))
	page, err := s.ListRuns(context.Background(), RunQuery{DeploymentID: a.ID, Limit: 1})
	require.NoError(t, err)
	assert.WithinDuration(t, now, page.Items[0].CreatedAt, time.Millisecond, "the newest runs are kept")

	// b's runs are 25–30 hours old: a 26 h max age drops the older ones.
	n, err = s.PruneRuns(context.Background(), Retention{MaxAge: 26 * time.Hour})
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Equal(t, 2, countRuns(t, s, b.ID))
	assert.Empty(t, st.Check())
}

// A long create/fire loop with retention on keeps the file from growing
// without bound: after a warm-up, the size stays flat.
//
// The store grows the file one page past what it needs (AllocSize), so the
// file's size is bbolt's high-water mark and a leak shows within a few
// rounds: with bbolt's default 16 MiB step the file sat at 16 MiB whatever
// the test leaked (a leaked run, index entry or session link passed). Random
// ids make page splits vary, so a warm file may still take a page or two (at
// most 8 KiB in 200 runs); any one of those leaks grows it by 32 KiB or more
// over the eleven measured rounds (30 fires each), so 16 KiB is allowed.
func TestRetentionBoundsTheDataFile(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "db")
	const page = 4096
	st, err := store.Open(path, store.Options{NoSync: true, MaxBatchDelay: time.Microsecond, AllocSize: page})
	require.NoError(t, err)
	defer st.Close()
	s := NewService(Config{Store: st, Backend: sessionstest.New(map[string]int64{"agent_a": 1}), Now: func() time.Time { return now }})
	d := createScheduled(t, s)
	size := func() int64 {
		fi, err := os.Stat(path)
		require.NoError(t, err)
		return fi.Size()
	}
	var sizes []int64
	for round := range 14 {
		for range 30 {
			now = now.Add(time.Minute)
			res, err := s.Fire(context.Background(), d.ID, now, d.Generation, nil)
			require.NoError(t, err)
			require.Equal(t, FireSucceeded, res.Outcome)
			d = res.Deployment
		}
		_, err := s.PruneRuns(context.Background(), Retention{MaxPerDeployment: 15})
		require.NoError(t, err)
		require.Equal(t, 15, countRuns(t, s, d.ID))
		if round >= 2 {
			sizes = append(sizes, size())
		}
	}
	assert.LessOrEqual(t, sizes[len(sizes)-1]-sizes[0], int64(4*page),
		"file size stays flat once freed pages are reused: %v", sizes)
}

// Regression (found by the scale benchmark): a retention pass with nothing
// to prune must not commit a write transaction per deployment — at 100,000
// deployments that was ~20 s of fsyncs every interval, and shutdown waited
// for it.
func TestPruneWithNothingToDeleteCommitsNoWrites(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{NoSync: true})
	require.NoError(t, err)
	defer st.Close()
	s := NewService(Config{Store: st, Backend: sessionstest.New(map[string]int64{"agent_a": 1})})
	for range 50 {
		createScheduled(t, s)
	}
	txID := st.LastTxID
	before := txID()
	n, err := s.PruneRuns(context.Background(), Retention{MaxPerDeployment: 10, MaxAge: time.Hour})
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Equal(t, before, txID(), "no write transaction was committed")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = s.PruneRuns(ctx, Retention{MaxPerDeployment: 10})
	assert.ErrorIs(t, err, context.Canceled, "a shutdown stops a pass")
}

// Regression: the max-age loop of PruneRuns ignored ctx, so a shutdown
// during a large age-based prune waited for all of it.
func TestPruneByAgeStopsWhenCanceled(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{NoSync: true})
	require.NoError(t, err)
	defer st.Close()
	s := NewService(Config{Store: st, Backend: sessionstest.New(map[string]int64{"agent_a": 1}), Now: func() time.Time { return now }})
	d := createScheduled(t, s)
	for range 3 {
		_, err := s.RunNow(context.Background(), d.ID)
		require.NoError(t, err)
	}
	now = now.Add(48 * time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n, err := s.PruneRuns(ctx, Retention{MaxAge: time.Hour})
	assert.ErrorIs(t, err, context.Canceled, "a shutdown stops an age-based pass")
	assert.Zero(t, n)
	assert.Equal(t, 3, countRuns(t, s, d.ID))
}
