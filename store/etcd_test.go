package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/store/storetest"
)

// What only the etcd engine has: conflicts between nodes, range guards,
// fences, the Txn size cap, outages.

func openEtcdPair(t *testing.T, opts EtcdOptions) (*Store, *Store) {
	t.Helper()
	c := storetest.Shared(t)
	opts.Endpoints = c.Endpoints()
	opts.Prefix = storetest.Prefix(t)
	open := func() *Store {
		st, err := OpenEtcd(opts)
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	return open(), open()
}

// A key read by a closure and changed by another node before the commit
// makes the closure run again on the new value.
func TestEtcdPointReadConflictReruns(t *testing.T) {
	st, peer := openEtcdPair(t, EtcdOptions{})
	require.NoError(t, st.Update(func(tx *Tx) error { return tx.PutAPIKey(APIKey{ID: "k", Name: "0"}) }))
	attempts := 0
	require.NoError(t, st.Update(func(tx *Tx) error {
		attempts++
		k, err := tx.GetAPIKey("k")
		if err != nil {
			return err
		}
		if attempts == 1 {
			require.NoError(t, peer.Update(func(tx *Tx) error { return tx.PutAPIKey(APIKey{ID: "k", Name: "peer"}) }))
		}
		k.Name += "+mine"
		return tx.PutAPIKey(k)
	}))
	assert.Equal(t, 2, attempts)
	require.NoError(t, peer.View(func(tx *Tx) error {
		k, err := tx.GetAPIKey("k")
		require.NoError(t, err)
		assert.Equal(t, "peer+mine", k.Name, "the rerun saw the other node's write")
		return nil
	}))
	assert.Equal(t, uint64(1), st.etcd.conflicts.Load())
}

// A scan inside a write is guarded: a key appearing in the scanned range
// before the commit makes the closure run again.
func TestEtcdRangeGuardSeesAnInsert(t *testing.T) {
	st, peer := openEtcdPair(t, EtcdOptions{})
	ns, err := st.Namespace(NamespaceLocal)
	require.NoError(t, err)
	pns, err := peer.Namespace(NamespaceLocal)
	require.NoError(t, err)
	put := func(n *Namespace, k string) {
		require.NoError(t, n.Update(func(tx *NamespaceTx) error { return tx.Bucket("events").Put([]byte(k), []byte("x")) }))
	}
	put(ns, "s1/1")
	put(ns, "s1/2")
	attempts := 0
	require.NoError(t, ns.Update(func(tx *NamespaceTx) error {
		attempts++
		n := 0
		tx.Bucket("events").Scan([]byte("s1/"), nil, false, func(_, _ []byte) bool { n++; return true })
		if attempts == 1 {
			put(pns, "s1/3")
		}
		return tx.Bucket("stderr").Put([]byte("s1"), []byte(fmt.Sprint(n)))
	}))
	assert.Equal(t, 2, attempts)
	require.NoError(t, pns.View(func(tx *NamespaceTx) error {
		assert.Equal(t, "3", string(tx.Bucket("stderr").Get([]byte("s1"))))
		return nil
	}))
}

// A fenced write commits while the fence key has the create revision it
// names, and is refused once the key is gone or re-created, also when that
// happens between the closure's read and its commit.
func TestEtcdFence(t *testing.T) {
	st, _ := openEtcdPair(t, EtcdOptions{})
	cli := storetest.Shared(t).Client(t)
	ctx := context.Background()
	key := st.etcd.prefix + "test-leader"
	resp, err := cli.Put(ctx, key, "me")
	require.NoError(t, err)
	f := Fence{Key: key, Rev: resp.Header.Revision}
	require.NoError(t, st.Write(func(tx *Tx) error {
		if err := tx.RequireFence(f); err != nil {
			return err
		}
		return tx.PutAPIKey(APIKey{ID: "fenced-1"})
	}))
	attempts := 0
	err = st.Write(func(tx *Tx) error {
		attempts++
		if err := tx.RequireFence(f); err != nil {
			return err
		}
		if attempts == 1 {
			// Deposed after the check, before the commit.
			_, err := cli.Delete(ctx, key)
			require.NoError(t, err)
			_, err = cli.Put(ctx, key, "someone else")
			require.NoError(t, err)
		}
		return tx.PutAPIKey(APIKey{ID: "fenced-2"})
	})
	require.ErrorIs(t, err, ErrFenced)
	assert.Equal(t, 2, attempts)
	require.NoError(t, st.View(func(tx *Tx) error {
		_, err := tx.GetAPIKey("fenced-2")
		assert.ErrorIs(t, err, ErrNotFound)
		return nil
	}))
	// A zero fence fences nothing.
	require.NoError(t, st.Write(func(tx *Tx) error { return tx.RequireFence(Fence{}) }))
}

// Writers grouped past --max-txn-ops commit in smaller groups, each atomic;
// one closure alone past it fails and says so.
func TestEtcdGroupsSplitAtMaxTxnOps(t *testing.T) {
	st, peer := openEtcdPair(t, EtcdOptions{MaxTxnOps: 8})
	var wg sync.WaitGroup
	for w := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, st.Write(func(tx *Tx) error {
				for i := range 3 {
					if err := tx.PutAPIKey(APIKey{ID: fmt.Sprintf("w%02d-%d", w, i)}); err != nil {
						return err
					}
				}
				return nil
			}))
		}()
	}
	wg.Wait()
	require.NoError(t, peer.View(func(tx *Tx) error {
		keys, err := tx.ListAPIKeys()
		require.NoError(t, err)
		assert.Len(t, keys, 36)
		return nil
	}))
	err := st.Write(func(tx *Tx) error {
		for i := range 9 {
			if err := tx.PutAPIKey(APIKey{ID: fmt.Sprint("big", i)}); err != nil {
				return err
			}
		}
		return nil
	})
	require.ErrorIs(t, err, errTxnTooLarge)
	assert.Contains(t, err.Error(), "--max-txn-ops")
}

// An unreachable cluster: a clear start error naming the endpoints; during a
// request, ErrUnavailable within the request timeout (not a hang); and the
// same Store serves again once the cluster is back.
func TestEtcdUnavailable(t *testing.T) {
	_, err := OpenEtcd(EtcdOptions{Endpoints: []string{"http://127.0.0.1:1"}, DialTimeout: 300 * time.Millisecond})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "http://127.0.0.1:1")
	assert.Contains(t, err.Error(), "store.etcd.endpoints")

	c := storetest.Start(t, 1)
	st, err := OpenEtcd(EtcdOptions{Endpoints: c.Endpoints(), Prefix: "/u/", RequestTimeout: 500 * time.Millisecond})
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.Update(func(tx *Tx) error { return tx.PutAPIKey(APIKey{ID: "k"}) }))
	c.StopMember(0)
	start := time.Now()
	err = st.View(func(tx *Tx) error { _, err := tx.GetAPIKey("k"); return err })
	require.ErrorIs(t, err, ErrUnavailable)
	assert.Less(t, time.Since(start), 5*time.Second, "bounded by the request timeout")
	assert.True(t, strings.Contains(err.Error(), c.Endpoints()[0]), err.Error())
	require.ErrorIs(t, st.Ping(), ErrUnavailable)
	require.NoError(t, c.RestartMember(0))
	require.Eventually(t, func() bool { return st.Ping() == nil }, 20*time.Second, 50*time.Millisecond)
	require.NoError(t, st.View(func(tx *Tx) error { _, err := tx.GetAPIKey("k"); return err }))
}

// A server older than the minimum is refused, naming both versions.
func TestEtcdVersionCompare(t *testing.T) {
	assert.True(t, versionLess("3.3.27", MinEtcdVersion))
	assert.False(t, versionLess("3.4.23", MinEtcdVersion))
	assert.False(t, versionLess("3.7.3", MinEtcdVersion))
	assert.True(t, versionLess("3.4.23", "3.10.0"))
}
