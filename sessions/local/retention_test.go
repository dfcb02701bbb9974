package local

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sandbox0/sandbox0d/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRetentionPrunesAndTheFileStaysFlat runs a long loop of sessions whose
// harness prints hundreds of lines, pruning after each as retention does:
// sessions, events and workspaces go, and the database file stops growing
// once bbolt has pages to reuse. The file grows in steps of 256 KiB here
// (bbolt's default is 16 MiB, which would take ~1 MB of events per
// session to notice a leak): a step is a few sessions' worth of events.
func TestRetentionPrunesAndTheFileStaysFlat(t *testing.T) {
	t.Parallel() // its own file; overlaps the tests that wait
	const lines = 300
	start := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &fixedClock{t: start}
	rig := newRigWith(t, "", store.Options{AllocSize: 256 << 10}, []Agent{shAgent("agent_chatty",
		`echo state > state.txt; i=0; while [ $i -lt `+strconv.Itoa(lines)+` ]; do i=$((i+1)); printf 'line %06d of a chatty harness %0300d\n' $i 0; done`)},
		func(c *Config) {
			c.Now = clock.Now
			c.SessionRetention = time.Hour
		})
	dbFile := filepath.Join(rig.dir, "state.db")
	size := func() int64 {
		fi, err := os.Stat(dbFile)
		require.NoError(t, err)
		return fi.Size()
	}

	const loops, warmup = 24, 4
	// Each session stores ~140 KB of events: without pruning the loop would
	// add ~3 MB to the file, a dozen growth steps.
	initial := size()
	var warm int64
	for i := range loops {
		id := rig.create("agent_chatty", nil)
		if rec := rig.waitDone(id); rec.Status != statusIdle {
			t.Fatalf("session %s is %s; events:\n%s", id, rec.Status, rig.dump(id))
		}
		require.Len(t, rig.events(id), lines+3)

		// Not yet: idle, but active within the retention.
		n, err := rig.b.PruneSessions(clock.Now().Add(59 * time.Minute))
		require.NoError(t, err)
		require.Equal(t, 0, n)

		n, err = rig.b.PruneSessions(clock.Now().Add(time.Hour))
		require.NoError(t, err)
		require.Equal(t, 1, n)
		_, err = rig.b.store.get(id)
		require.ErrorIs(t, err, errSessionNotFound)
		assert.Zero(t, storedEventCount(t, rig, id), "the events go with the session")
		assert.NoDirExists(t, filepath.Join(rig.cfg.WorkspaceDir, id))
		if i == warmup-1 {
			warm = size()
		}
	}
	final := size()
	t.Logf("database file: %d bytes at start, %d after %d sessions, %d after %d (%d events each)",
		initial, warm, warmup, final, loops, lines+3)
	assert.LessOrEqual(t, final, warm+warm/4, "the file keeps growing although every session is pruned")
}

// TestRetentionKeepsActiveAndRecentSessions: terminated and archived
// sessions go after the retention, an idle one counts from its last
// activity, and a session in a turn is never pruned.
func TestRetentionKeepsActiveAndRecentSessions(t *testing.T) {
	start := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &fixedClock{t: start}
	rig := newRig(t, []Agent{shAgent("agent_block", blockingScript), shAgent("agent_fail", "exit 1"),
		shAgent("agent_quick", "echo hi")},
		func(c *Config) { c.Now = clock.Now; c.SessionRetention = time.Hour })
	failed := rig.create("agent_fail", nil)
	rig.waitDone(failed)
	idle := rig.create("agent_quick", nil)
	rig.waitDone(idle)
	running := rig.create("agent_block", nil)
	rig.waitForText(running, "ready ")

	n, err := rig.b.PruneSessions(start.Add(2 * time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	for _, id := range []string{failed, idle} {
		_, err := rig.b.store.get(id)
		assert.ErrorIs(t, err, errSessionNotFound)
	}
	assert.Equal(t, statusRunning, mustGet(t, rig, running).Status, "a session in a turn is kept")
}

// storedEventCount counts a session's events in bbolt, record or not.
func storedEventCount(t *testing.T, rig *testRig, id string) int {
	n := 0
	require.NoError(t, rig.ns.View(func(tx *store.NamespaceTx) error {
		tx.Bucket(bucketEvents).Scan(eventPrefix(id), nil, false, func(_, _ []byte) bool { n++; return true })
		return nil
	}))
	return n
}
