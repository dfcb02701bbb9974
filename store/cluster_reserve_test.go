package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/store/storetest"
)

// A placement's reservation (issue 26) is a compare-and-swap on the load
// key: a second placement that read the same load is refused and reads
// again; the node's publish keeps reservations it did not release and
// drops the one it did; the placer can release its own.
func TestClusterReserveIsACompareAndSwap(t *testing.T) {
	st, err := OpenEtcd(EtcdOptions{Endpoints: storetest.Shared(t).Endpoints(), Prefix: storetest.Prefix(t)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	cl, err := st.Cluster(ClusterOptions{Node: "n1", LeaseTTL: 10 * time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		cl.Lead(ctx, func(term context.Context, _ Fence) { <-term.Done() })
	}()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool { return cl.LeaseID() != 0 }, 10*time.Second, 10*time.Millisecond)

	free := 3
	load := func() NodeLoad { return NodeLoad{FreeSlots: free} }
	require.NoError(t, cl.PublishLoad(ctx, load, ""))
	loads := func() NodeLoad {
		ls, err := cl.Loads(ctx)
		require.NoError(t, err)
		require.Len(t, ls, 1)
		return ls[0]
	}
	read := loads()
	assert.Equal(t, 3, read.Free())

	ok, err := cl.Reserve(ctx, read, "a")
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = cl.Reserve(ctx, read, "b") // read before a's reservation
	require.NoError(t, err)
	assert.False(t, ok, "a placement that read a changed load is refused")
	ok, err = cl.Reserve(ctx, loads(), "b")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, 1, loads().Free())

	// The node created a's session: its publish counts it and drops a, and
	// keeps b.
	free = 2
	require.NoError(t, cl.PublishLoad(ctx, load, "a"))
	now := loads()
	assert.Equal(t, 1, now.Free())
	require.Len(t, now.Reserved, 1)
	assert.Equal(t, "b", now.Reserved[0].Token)
	// b's creation went elsewhere: released by its placer.
	require.NoError(t, cl.Release(ctx, "n1", "b"))
	assert.Equal(t, 2, loads().Free())
	assert.Empty(t, loads().Reserved)
	require.NoError(t, cl.Release(ctx, "n1", "b"), "releasing twice is a no-op")

	// c's session is counted by a publish made for another session (d's):
	// the load names c among the sessions it counts, so c's reservation
	// goes in that write, not later with c's own publish. Counted twice in
	// between, c would make the node look fuller than it is.
	for _, tok := range []string{"c", "d"} {
		ok, err = cl.Reserve(ctx, loads(), tok)
		require.NoError(t, err)
		require.True(t, ok)
	}
	assert.Equal(t, 0, loads().Free())
	free = 0
	counted := func() NodeLoad { return NodeLoad{FreeSlots: free, Running: 2, Counted: []string{"c", "d"}} }
	require.NoError(t, cl.PublishLoad(ctx, counted, "d"))
	assert.Empty(t, loads().Reserved, "c dropped with d: both are counted as running")
	assert.Equal(t, 0, loads().Free())
}
