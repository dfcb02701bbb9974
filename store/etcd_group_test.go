package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/store/storetest"
)

// The fire path's speed on etcd (issue 25, "Speed"): a group is packed into
// Txns without running a function twice, a claim and a fence cost no read
// before the commit, and a refused commit reruns from what the refusal read,
// failing only the fires that must fail.

// commitBatch commits fns as one group, as Write does when they arrive
// together, and returns each function's outcome.
func commitBatch(st *Store, fns ...func(*Tx) error) []error {
	batch := make([]*groupCall, len(fns))
	for i, fn := range fns {
		batch[i] = &groupCall{fn: fn, done: make(chan struct{}), lead: make(chan struct{})}
	}
	st.commitGroup(batch)
	errs := make([]error, len(fns))
	for i, c := range batch {
		errs[i] = c.err
	}
	return errs
}

// counted wraps fn so the test sees how often the group ran it.
func counted(runs *int, fn func(*Tx) error) func(*Tx) error {
	return func(tx *Tx) error {
		*runs++
		return fn(tx)
	}
}

func fire(fence Fence, id string, at time.Time, runID string) func(*Tx) error {
	return func(tx *Tx) error {
		if err := tx.RequireFence(fence); err != nil {
			return err
		}
		if err := tx.ClaimScheduledFire(id, at, runID); err != nil {
			return err
		}
		return tx.PutIntent(runID, []byte(`{"run":"`+runID+`"}`))
	}
}

func leaderFence(t *testing.T, st *Store) Fence {
	t.Helper()
	cli := storetest.Shared(t).Client(t)
	key := st.etcd.prefix + "test-leader"
	resp, err := cli.Put(context.Background(), key, "me")
	require.NoError(t, err)
	return Fence{Key: key, Rev: resp.Header.Revision}
}

// A group larger than one Txn commits in as many Txns as --max-txn-ops
// demands, each function run once but the one that would overflow a Txn:
// it is rolled back and leads the next (run twice, not the whole group);
// nothing is read from etcd before a commit (the fence is taken as held,
// the claims as absent), and the fence's compare is one per Txn however
// many fires share it.
func TestEtcdGroupPacksTxnsWithoutRerunningTheGroup(t *testing.T) {
	st, peer := openEtcdPair(t, EtcdOptions{MaxTxnOps: 8})
	fence := leaderFence(t, st)
	at := time.Unix(1_700_000_000, 0)
	runs := make([]int, 10)
	var fns []func(*Tx) error
	for i := range runs {
		// Two writes and a claim compare each (and one fence compare per
		// Txn): four fires fit 8 writes and 5 compares, a fifth would need
		// 10 writes and is rolled back.
		fns = append(fns, counted(&runs[i], fire(fence, fmt.Sprint("d", i), at, fmt.Sprint("run", i))))
	}
	gets, txns := st.etcd.gets.Load(), st.etcd.txns.Load()
	for i, err := range commitBatch(st, fns...) {
		assert.NoError(t, err, "fire %d", i)
	}
	assert.Equal(t, []int{1, 1, 1, 1, 2, 1, 1, 1, 2, 1}, runs, "the fifth of each Txn was rolled back and led the next")
	assert.Equal(t, uint64(3), st.etcd.txns.Load()-txns, "10 fires of 2 writes in Txns of at most 8 writes: 4+4+2")
	assert.Zero(t, st.etcd.gets.Load()-gets, "no read before a commit")
	require.NoError(t, peer.View(func(tx *Tx) error {
		for i := range runs {
			assert.Equal(t, fmt.Sprint("run", i), tx.ScheduledFireRunID(fmt.Sprint("d", i), at))
			assert.True(t, tx.HasIntent(fmt.Sprint("run", i)))
		}
		return nil
	}))
}

// A claim another node took while the group ran refuses the Txn; the rerun
// starts from what the refusal read, so the fire whose claim was taken fails
// alone with ErrDuplicateFire and the others commit, in two Txns in all and
// without a read in between.
func TestEtcdTakenClaimFailsOnlyItsFire(t *testing.T) {
	st, peer := openEtcdPair(t, EtcdOptions{})
	fence := leaderFence(t, st)
	at := time.Unix(1_700_000_060, 0)
	runs := make([]int, 5)
	var fns []func(*Tx) error
	for i := range runs {
		fns = append(fns, counted(&runs[i], fire(fence, fmt.Sprint("d", i), at, fmt.Sprint("run", i))))
	}
	// The other node claims d2's fire after this group's first run of it.
	inner := fns[2]
	fns[2] = func(tx *Tx) error {
		if runs[2] == 0 {
			require.NoError(t, peer.Update(func(tx *Tx) error { return tx.ClaimScheduledFire("d2", at, "theirs") }))
		}
		return inner(tx)
	}
	gets, txns := st.etcd.gets.Load(), st.etcd.txns.Load()
	errs := commitBatch(st, fns...)
	for i, err := range errs {
		if i == 2 {
			assert.ErrorIs(t, err, ErrDuplicateFire)
		} else {
			assert.NoError(t, err, "fire %d", i)
		}
	}
	assert.Equal(t, []int{2, 2, 2, 2, 2}, runs, "one refused run, one rerun from the seed")
	assert.Equal(t, uint64(2), st.etcd.txns.Load()-txns)
	assert.Zero(t, st.etcd.gets.Load()-gets, "the refusal's Else read what the rerun needed")
	require.NoError(t, peer.View(func(tx *Tx) error {
		assert.Equal(t, "theirs", tx.ScheduledFireRunID("d2", at), "the other claim stands")
		assert.False(t, tx.HasIntent("run2"), "the refused fire wrote nothing")
		for _, i := range []int{0, 1, 3, 4} {
			assert.Equal(t, fmt.Sprint("run", i), tx.ScheduledFireRunID(fmt.Sprint("d", i), at))
		}
		return nil
	}))
}

// A deposed leader is refused although its fence is taken as held without
// a read: the commit's compare fails, the rerun sees the new election key
// and every fenced fire of the group fails with ErrFenced, while an
// unfenced write of the same group (an API write) commits.
func TestEtcdLostFenceRefusesEveryFencedFire(t *testing.T) {
	st, peer := openEtcdPair(t, EtcdOptions{})
	fence := leaderFence(t, st)
	cli := storetest.Shared(t).Client(t)
	_, err := cli.Delete(context.Background(), fence.Key)
	require.NoError(t, err)
	_, err = cli.Put(context.Background(), fence.Key, "the new leader")
	require.NoError(t, err)
	at := time.Unix(1_700_000_120, 0)
	errs := commitBatch(st,
		fire(fence, "d0", at, "run0"),
		func(tx *Tx) error { return tx.PutAPIKey(APIKey{ID: "api-write"}) },
		fire(fence, "d1", at, "run1"))
	assert.ErrorIs(t, errs[0], ErrFenced)
	assert.NoError(t, errs[1])
	assert.ErrorIs(t, errs[2], ErrFenced)
	require.NoError(t, peer.View(func(tx *Tx) error {
		assert.Empty(t, tx.ScheduledFireRunID("d0", at))
		assert.Empty(t, tx.ScheduledFireRunID("d1", at))
		_, err := tx.GetAPIKey("api-write")
		assert.NoError(t, err)
		return nil
	}))
}

// An outcome with no commit to prove it is proved before it is believed:
// an error returned after a fence taken as held becomes ErrFenced when the
// fence was lost, and a closure that decides from a claim taken as absent
// and writes nothing sees the claim on its rerun.
func TestEtcdAssumptionsAreProvedWithoutACommit(t *testing.T) {
	st, peer := openEtcdPair(t, EtcdOptions{})
	fence := leaderFence(t, st)
	cli := storetest.Shared(t).Client(t)
	_, err := cli.Delete(context.Background(), fence.Key)
	require.NoError(t, err)
	err = st.Write(func(tx *Tx) error {
		if err := tx.RequireFence(fence); err != nil {
			return err
		}
		return errors.New("a decision made as the leader")
	})
	assert.ErrorIs(t, err, ErrFenced)

	at := time.Unix(1_700_000_180, 0)
	require.NoError(t, peer.Update(func(tx *Tx) error { return tx.ClaimScheduledFire("d", at, "theirs") }))
	var holder string
	attempts := 0
	require.NoError(t, st.Update(func(tx *Tx) error {
		attempts++
		holder = tx.ScheduledFireRunID("d", at)
		return nil
	}))
	assert.Equal(t, "theirs", holder)
	assert.Equal(t, 2, attempts)
}

// Concurrent transactions' first reads go to etcd together (one Txn of
// Gets, one linearizable read for the group), and each still sees every
// write acknowledged before it began: here, on another node, the moment
// before.
func TestEtcdFirstReadsAreGroupedAndLinearizable(t *testing.T) {
	st, peer := openEtcdPair(t, EtcdOptions{})
	const readers, each = 32, 20
	gets := st.etcd.gets.Load()
	var wg sync.WaitGroup
	for r := range readers {
		wg.Go(func() {
			for i := range each {
				name := fmt.Sprintf("%d-%d", r, i)
				id := fmt.Sprint("reader-", r)
				if !assert.NoError(t, peer.Update(func(tx *Tx) error { return tx.PutAPIKey(APIKey{ID: id, Name: name}) })) {
					return
				}
				assert.NoError(t, st.View(func(tx *Tx) error {
					k, err := tx.GetAPIKey(id)
					if err == nil {
						assert.Equal(t, name, k.Name, "a read begun after an acknowledged write sees it")
					}
					return err
				}))
			}
		})
	}
	wg.Wait()
	sent := st.etcd.gets.Load() - gets
	t.Logf("%d reads in %d requests", readers*each, sent)
	assert.Less(t, sent, uint64(readers*each), "reads arriving together share a request")
}
