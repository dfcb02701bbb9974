package store

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/store/storetest"
)

// The read mirror (etcd_mirror.go) on the embedded members (v3.7, where it
// is on): every read answered from the copy is linearizable, a copy that is
// behind costs time and never a stale answer, and the documents read from
// it do not travel again.

func putMirrored(t *testing.T, st *Store, id, doc string) {
	t.Helper()
	require.NoError(t, st.Update(func(tx *Tx) error {
		if doc == "" {
			return tx.bucket(bucketDeployments).Delete([]byte(id))
		}
		return tx.bucket(bucketDeployments).Put([]byte(id), []byte(doc))
	}))
}

func viewDoc(t *testing.T, st *Store, id string) string {
	t.Helper()
	var doc string
	require.NoError(t, st.View(func(tx *Tx) error { doc = string(tx.ViewDeployment(id)); return nil }))
	return doc
}

func awaitMirrorLive(t *testing.T, st *Store) {
	t.Helper()
	require.Eventually(t, func() bool { return st.ReadMirror().Live }, 10*time.Second, 10*time.Millisecond, "the read mirror loads")
}

// A write acknowledged by one node is seen by the next read on another,
// whether the read is answered by the copy or by etcd: puts, overwrites and
// deletes, one after another with no pause between them.
func TestReadMirrorSeesEveryAcknowledgedWrite(t *testing.T) {
	writer, reader := openEtcdPair(t, EtcdOptions{})
	awaitMirrorLive(t, reader)
	require.True(t, reader.ReadMirror().Enabled)
	gets := reader.etcd.gets.Load()
	const n = 200
	for i := range n {
		id := fmt.Sprintf("d%d", i%7)
		want := fmt.Sprintf(`{"v":%d}`, i)
		if i%5 == 4 {
			want = ""
		}
		putMirrored(t, writer, id, want)
		require.Equal(t, want, viewDoc(t, reader, id), "read %d on the other node", i)
	}
	m := reader.ReadMirror()
	assert.Equal(t, uint64(n), m.Served+m.Missed)
	assert.Greater(t, m.Served, uint64(n/2), "most reads answered from the copy (missed %d)", m.Missed)
	assert.Equal(t, m.Missed, reader.etcd.gets.Load()-gets, "only the missed reads read etcd")
}

// One transaction writing several documents is one revision with several
// events: every one of them reaches the copy.
func TestReadMirrorHoldsEveryDocumentOfOneTransaction(t *testing.T) {
	writer, reader := openEtcdPair(t, EtcdOptions{})
	awaitMirrorLive(t, reader)
	for round := range 5 {
		require.NoError(t, writer.Update(func(tx *Tx) error {
			for i := range 7 {
				if err := tx.bucket(bucketDeployments).Put([]byte(fmt.Sprintf("d%d", i)), []byte(fmt.Sprintf("%d-%d", round, i))); err != nil {
					return err
				}
			}
			return nil
		}))
		for i := range 7 {
			require.Equal(t, fmt.Sprintf("%d-%d", round, i), viewDoc(t, reader, fmt.Sprintf("d%d", i)), "round %d", round)
		}
	}
	assert.Greater(t, reader.ReadMirror().Served, uint64(0))
}

// A copy that has fallen behind (its watch's events held back) cannot
// answer a read whose barrier it has not reached: the read waits at most
// mirrorWait, then reads etcd, and gets the new value.
func TestReadMirrorBehindReadsEtcd(t *testing.T) {
	writer, reader := openEtcdPair(t, EtcdOptions{})
	putMirrored(t, writer, "d", "old")
	awaitMirrorLive(t, reader)
	require.Equal(t, "old", viewDoc(t, reader, "d"))

	reader.etcd.mirror.stall.Lock()
	putMirrored(t, writer, "d", "new")
	missed := reader.ReadMirror().Missed
	assert.Equal(t, "new", viewDoc(t, reader, "d"), "never the copy's stale value")
	assert.Equal(t, missed+1, reader.ReadMirror().Missed)
	reader.etcd.mirror.stall.Unlock()

	require.Eventually(t, func() bool {
		served := reader.ReadMirror().Served
		return viewDoc(t, reader, "d") == "new" && reader.ReadMirror().Served > served
	}, 10*time.Second, 10*time.Millisecond, "the copy catches up and answers again")
}

// Writes elsewhere move the cluster's revision without an event for the
// copy (another install under its own prefix here): the copy reaches the
// barrier through progress notifications and keeps answering.
func TestReadMirrorFollowsTheRevisionThroughProgress(t *testing.T) {
	writer, reader := openEtcdPair(t, EtcdOptions{})
	putMirrored(t, writer, "d", "v")
	awaitMirrorLive(t, reader)

	c := storetest.Shared(t)
	other, err := OpenEtcd(EtcdOptions{Endpoints: c.Endpoints(), Prefix: storetest.Prefix(t) + "other/"})
	require.NoError(t, err)
	defer other.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			_ = other.Update(func(tx *Tx) error {
				return tx.bucket(bucketDeployments).Put([]byte("x"), []byte(strconv.Itoa(i)))
			})
		}
	})
	before := reader.ReadMirror()
	for range 50 {
		require.Equal(t, "v", viewDoc(t, reader, "d"))
	}
	cancel()
	wg.Wait()
	after := reader.ReadMirror()
	assert.Equal(t, uint64(50), after.Served+after.Missed-before.Served-before.Missed)
	assert.Greater(t, after.Served-before.Served, uint64(0), "progress notifications carry the copy to the barrier (missed %d)", after.Missed-before.Missed)
	assert.Greater(t, after.Revision, before.Revision)
}

// A read-write transaction whose first read came from the copy commits only
// if the key is unchanged: two nodes incrementing one document never lose
// an increment.
func TestReadMirrorUpdatesStayOptimistic(t *testing.T) {
	a, b := openEtcdPair(t, EtcdOptions{})
	putMirrored(t, a, "n", "0")
	awaitMirrorLive(t, a)
	awaitMirrorLive(t, b)
	var wg sync.WaitGroup
	for _, st := range []*Store{a, b} {
		wg.Go(func() {
			for range 25 {
				assert.NoError(t, st.Update(func(tx *Tx) error {
					n, err := strconv.Atoi(string(tx.ViewDeployment("n")))
					if err != nil {
						return err
					}
					return tx.bucket(bucketDeployments).Put([]byte("n"), []byte(strconv.Itoa(n+1)))
				}))
			}
		})
	}
	wg.Wait()
	assert.Equal(t, "50", viewDoc(t, a, "n"))
	assert.Equal(t, "50", viewDoc(t, b, "n"))
	assert.Greater(t, a.ReadMirror().Served+b.ReadMirror().Served, uint64(0))
}

// The copy holds only the deployment documents; store.etcd.read_mirror:
// false keeps none, and says so.
func TestReadMirrorOff(t *testing.T) {
	_, st := openEtcdPair(t, EtcdOptions{NoReadMirror: true})
	m := st.ReadMirror()
	assert.False(t, m.Enabled)
	assert.Contains(t, m.Reason, "read_mirror")
}

func TestProgressSafeVersions(t *testing.T) {
	for v, safe := range map[string]bool{
		"3.3.27": false, "3.4.0": false, "3.4.23": false, "3.4.30": false, "3.4.31": true, "3.4.40": true,
		"3.5.0": false, "3.5.12": false, "3.5.13": true, "3.5.21": true, "3.6.0": true, "3.7.1": true,
	} {
		assert.Equal(t, safe, progressSafe(v), v)
	}
}

// On the etcd a Debian user gets (3.4.23, whose progress notifications can
// run ahead of its events) the mirror stays off and says which member and
// version keep it off; reads then go to etcd.
func TestReadMirrorOffOnAnOlderServer(t *testing.T) {
	c := storetest.SharedExternal(t)
	st, err := OpenEtcd(EtcdOptions{Endpoints: c.Endpoints(), Prefix: storetest.Prefix(t)})
	require.NoError(t, err)
	defer st.Close()
	m, v := st.ReadMirror(), storetest.ExternalVersion()
	if progressSafe(v) {
		assert.True(t, m.Enabled, "etcd %s", v)
	} else {
		assert.False(t, m.Enabled, "etcd %s", v)
		assert.Contains(t, m.Reason, v)
		assert.Contains(t, m.Reason, "3.5.13")
	}
	putMirrored(t, st, "d", "v")
	assert.Equal(t, "v", viewDoc(t, st, "d"))
}
