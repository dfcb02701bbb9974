package store_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/store/storetest"
)

// The conformance suite: every store operation, run on both engines. On
// etcd each test gets a prefix of its own in one shared three-member
// cluster, and "another node" is a second Store on the same prefix with a
// client of its own, as a second sandbox0d would have.

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.StopShared()
	os.Exit(code)
}

type engineRig struct {
	name string
	// open opens the store under test; peer opens another node's handle on
	// the same data (bbolt: the same Store, one process owns the file).
	open func(t *testing.T) (st, peer *store.Store)
}

func engines() []engineRig {
	return []engineRig{
		{"bbolt", func(t *testing.T) (*store.Store, *store.Store) {
			st, err := store.Open(filepath.Join(t.TempDir(), store.FileName), store.Options{NoSync: true})
			require.NoError(t, err)
			t.Cleanup(func() {
				assert.Empty(t, st.Check())
				require.NoError(t, st.Close())
			})
			return st, st
		}},
		{"etcd", func(t *testing.T) (*store.Store, *store.Store) {
			c := storetest.Shared(t)
			prefix := storetest.Prefix(t)
			open := func() *store.Store {
				st, err := store.OpenEtcd(store.EtcdOptions{Endpoints: c.Endpoints(), Prefix: prefix})
				require.NoError(t, err)
				t.Cleanup(func() { require.NoError(t, st.Close()) })
				return st
			}
			return open(), open()
		}},
		// The etcd a Debian user gets (etcd-server 3.4 in bookworm), as
		// three processes; skipped without an etcd binary.
		{"etcd-process", func(t *testing.T) (*store.Store, *store.Store) {
			c := storetest.SharedExternal(t)
			prefix := storetest.Prefix(t)
			open := func() *store.Store {
				st, err := store.OpenEtcd(store.EtcdOptions{Endpoints: c.Endpoints(), Prefix: prefix})
				require.NoError(t, err)
				t.Cleanup(func() { require.NoError(t, st.Close()) })
				return st
			}
			return open(), open()
		}},
	}
}

func eachEngine(t *testing.T, fn func(t *testing.T, st, peer *store.Store)) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			st, peer := e.open(t)
			fn(t, st, peer)
		})
	}
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func depl(id string, minute int, agent string) store.DeploymentIndex {
	return store.DeploymentIndex{ID: id, CreatedAt: t0.Add(time.Duration(minute) * time.Minute), AgentID: agent}
}

func docOf(id string) []byte { return []byte(`{"id":"` + id + `"}`) }

func ids(docs [][]byte) []string {
	var out []string
	for _, d := range docs {
		out = append(out, string(d[7:len(d)-2]))
	}
	return out
}

func TestConformanceDeployments(t *testing.T) {
	eachEngine(t, func(t *testing.T, st, peer *store.Store) {
		require.NoError(t, st.Update(func(tx *store.Tx) error {
			for i := range 7 {
				ix := depl(fmt.Sprintf("d%d", i), i, []string{"a", "b"}[i%2])
				ix.Paused = i == 3
				ix.Archived = i == 5
				if err := tx.PutDeployment(ix, docOf(ix.ID)); err != nil {
					return err
				}
			}
			return nil
		}))
		// Read back on the other node: newest first, filters, pages.
		require.NoError(t, peer.View(func(tx *store.Tx) error {
			assert.Equal(t, docOf("d2"), tx.GetDeployment("d2"))
			assert.Nil(t, tx.GetDeployment("nope"))
			assert.Equal(t, 7, tx.DeploymentCount())
			assert.Equal(t, map[string]int{"active": 5, "paused": 1, "archived": 1}, tx.CountDeploymentsByStatus())
			assert.Equal(t, []string{"d0", "d1", "d2", "d3", "d4", "d5", "d6"}, tx.DeploymentIDs())

			docs, next, err := tx.ListDeployments(store.DeploymentQuery{Limit: 3})
			require.NoError(t, err)
			assert.Equal(t, []string{"d6", "d4", "d3"}, ids(docs), "archived left out, newest first")
			require.NotNil(t, next)
			docs, next, err = tx.ListDeployments(store.DeploymentQuery{Limit: 3, After: next})
			require.NoError(t, err)
			assert.Equal(t, []string{"d2", "d1", "d0"}, ids(docs))
			assert.Nil(t, next, "the last page has no continuation")

			docs, _, err = tx.ListDeployments(store.DeploymentQuery{Limit: 10, AgentID: "b", IncludeArchived: true})
			require.NoError(t, err)
			assert.Equal(t, []string{"d5", "d3", "d1"}, ids(docs))
			docs, _, err = tx.ListDeployments(store.DeploymentQuery{Limit: 10, Status: "paused"})
			require.NoError(t, err)
			assert.Equal(t, []string{"d3"}, ids(docs))
			docs, _, err = tx.ListDeployments(store.DeploymentQuery{Limit: 10, CreatedGTE: t0.Add(2 * time.Minute), CreatedLTE: t0.Add(4 * time.Minute)})
			require.NoError(t, err)
			assert.Equal(t, []string{"d4", "d3", "d2"}, ids(docs))
			var seen []string
			require.NoError(t, tx.ForEachDeployment(func(id string, _ []byte) error { seen = append(seen, id); return nil }))
			assert.Len(t, seen, 7)
			return nil
		}))
		// Moving a deployment to another agent moves its index entry.
		require.NoError(t, st.Update(func(tx *store.Tx) error {
			return tx.PutDeployment(depl("d1", 1, "a"), docOf("d1"))
		}))
		require.NoError(t, peer.View(func(tx *store.Tx) error {
			docs, _, err := tx.ListDeployments(store.DeploymentQuery{Limit: 10, AgentID: "a"})
			require.NoError(t, err)
			assert.Equal(t, []string{"d6", "d4", "d2", "d1", "d0"}, ids(docs))
			return nil
		}))
		err := st.Update(func(tx *store.Tx) error { return tx.PutDeployment(depl("d1", 9, "a"), docOf("d1")) })
		assert.ErrorContains(t, err, "created_at changed")
	})
}

func TestConformanceRunsClaimsAndIntents(t *testing.T) {
	eachEngine(t, func(t *testing.T, st, peer *store.Store) {
		at := t0.Add(time.Hour)
		run := func(id string, minute int, scheduled, failed bool) store.RunIndex {
			return store.RunIndex{ID: id, DeploymentID: "d1", CreatedAt: t0.Add(time.Duration(minute) * time.Minute),
				Scheduled: scheduled, ScheduledAt: at.Add(time.Duration(minute) * time.Minute), HasError: failed}
		}
		require.NoError(t, st.Update(func(tx *store.Tx) error {
			require.NoError(t, tx.ClaimScheduledFire("d1", at, "r0"))
			require.NoError(t, tx.ClaimScheduledFire("d1", at, "r0"), "claiming again for the same run is a no-op")
			require.NoError(t, tx.PutIntent("r0", []byte(`{"run":"r0"}`)))
			return nil
		}))
		err := peer.Update(func(tx *store.Tx) error { return tx.ClaimScheduledFire("d1", at, "other") })
		require.ErrorIs(t, err, store.ErrDuplicateFire, "the other node sees the claim")
		require.NoError(t, st.Update(func(tx *store.Tx) error {
			for i := range 5 {
				r := run(fmt.Sprintf("r%d", i), i, i%2 == 0, i == 3)
				if i == 0 {
					r.ScheduledAt = at
				}
				if err := tx.PutRun(r, docOf(r.ID)); err != nil {
					return err
				}
			}
			require.NoError(t, tx.PutRunSession("sesn_1", "r1"))
			return tx.DeleteIntent("r0")
		}))
		require.NoError(t, peer.View(func(tx *store.Tx) error {
			assert.Equal(t, "r0", tx.ScheduledFireRunID("d1", at))
			assert.Equal(t, "r1", tx.RunOfSession("sesn_1"))
			n := 0
			require.NoError(t, tx.ForEachIntent(func(string, []byte) error { n++; return nil }))
			assert.Zero(t, n)
			docs, next, err := tx.ListRuns(store.RunQuery{Limit: 2})
			require.NoError(t, err)
			assert.Equal(t, []string{"r4", "r3"}, ids(docs))
			docs, _, err = tx.ListRuns(store.RunQuery{Limit: 10, After: next})
			require.NoError(t, err)
			assert.Equal(t, []string{"r2", "r1", "r0"}, ids(docs))
			docs, _, err = tx.ListRuns(store.RunQuery{Limit: 10, DeploymentID: "d1", Trigger: "schedule"})
			require.NoError(t, err)
			assert.Equal(t, []string{"r4", "r2", "r0"}, ids(docs))
			yes := true
			docs, _, err = tx.ListRuns(store.RunQuery{Limit: 10, HasError: &yes})
			require.NoError(t, err)
			assert.Equal(t, []string{"r3"}, ids(docs))
			docs, _, err = tx.ListRuns(store.RunQuery{Limit: 10, CreatedGT: t0.Add(time.Minute), CreatedLT: t0.Add(4 * time.Minute)})
			require.NoError(t, err)
			assert.Equal(t, []string{"r3", "r2"}, ids(docs))
			old := tx.RunsOlderThan(t0.Add(2*time.Minute), 10)
			require.Len(t, old, 2)
			assert.Equal(t, "r0", old[0].ID)
			assert.True(t, old[0].Scheduled)
			assert.True(t, old[0].ScheduledAt.Equal(at))
			beyond := tx.RunsBeyond("d1", 3, 10)
			require.Len(t, beyond, 2)
			assert.Equal(t, []string{"r1", "r0"}, []string{beyond[0].ID, beyond[1].ID})
			var claims []store.FireClaim
			require.NoError(t, tx.ForEachFireClaim(func(c store.FireClaim) error { claims = append(claims, c); return nil }))
			assert.Len(t, claims, 3)
			return nil
		}))
		// Deleting the run releases its claim.
		var old []store.RunIndex
		require.NoError(t, st.View(func(tx *store.Tx) error { old = tx.RunsOlderThan(t0.Add(time.Minute), 10); return nil }))
		require.NoError(t, st.Update(func(tx *store.Tx) error { return tx.DeleteRun(old[0]) }))
		require.NoError(t, peer.View(func(tx *store.Tx) error {
			assert.Equal(t, "", tx.ScheduledFireRunID("d1", at))
			assert.Nil(t, tx.GetRun("r0"))
			return nil
		}))
	})
}

// A cursor issued by one node works on another: both read the install's
// cursor secret from the store.
func TestConformanceCursorsAcrossNodes(t *testing.T) {
	eachEngine(t, func(t *testing.T, st, peer *store.Store) {
		pos := store.Position{CreatedAt: t0, ID: "d1"}
		tok := st.Cursors().EncodePosition("deployments?", pos)
		got, err := peer.Cursors().DecodePosition("deployments?", tok)
		require.NoError(t, err)
		assert.True(t, got.CreatedAt.Equal(pos.CreatedAt))
		assert.Equal(t, pos.ID, got.ID)
		_, err = peer.Cursors().DecodePosition("runs?", tok)
		assert.ErrorIs(t, err, store.ErrBadCursor)
	})
}

// Group commit: concurrent writers share transactions, a failing function
// fails alone, and no update is lost, also between two nodes writing the
// same document (on etcd: a conflict reruns the closure).
func TestConformanceGroupCommitAndConflicts(t *testing.T) {
	eachEngine(t, func(t *testing.T, st, peer *store.Store) {
		require.NoError(t, st.Update(func(tx *store.Tx) error { return tx.PutAPIKey(store.APIKey{ID: "counter", Name: "0"}) }))
		const per = 15
		var wg sync.WaitGroup
		failures := make(chan error, 4*per)
		for _, s := range []*store.Store{st, peer, st, peer} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range per {
					// Two writers of each node add 1 to the same record.
					err := s.Write(func(tx *store.Tx) error {
						k, err := tx.GetAPIKey("counter")
						if err != nil {
							return err
						}
						var n int
						fmt.Sscanf(k.Name, "%d", &n)
						k.Name = fmt.Sprint(n + 1)
						return tx.PutAPIKey(k)
					})
					if err != nil {
						failures <- err
					}
					// And a function that fails shares a group and fails alone.
					if i%5 == 0 {
						err := s.Write(func(tx *store.Tx) error {
							if err := tx.PutAPIKey(store.APIKey{ID: "never"}); err != nil {
								return err
							}
							return errors.New("boom")
						})
						if err == nil || err.Error() != "boom" {
							failures <- fmt.Errorf("failing write returned %v", err)
						}
					}
				}
			}()
		}
		wg.Wait()
		close(failures)
		for err := range failures {
			t.Error(err)
		}
		require.NoError(t, peer.View(func(tx *store.Tx) error {
			k, err := tx.GetAPIKey("counter")
			require.NoError(t, err)
			assert.Equal(t, fmt.Sprint(4*per), k.Name, "no increment lost")
			_, err = tx.GetAPIKey("never")
			assert.ErrorIs(t, err, store.ErrNotFound, "a failed function's writes are rolled back")
			keys, err := tx.ListAPIKeys()
			require.NoError(t, err)
			assert.Len(t, keys, 1)
			return nil
		}))
	})
}

// Namespaces: ordered scans both ways from an exclusive bound, a
// transaction reads its own writes (also while scanning), prefix deletes.
func TestConformanceNamespace(t *testing.T) {
	eachEngine(t, func(t *testing.T, st, peer *store.Store) {
		ns, err := st.Namespace(store.NamespaceLocal)
		require.NoError(t, err)
		pns, err := peer.Namespace(store.NamespaceLocal)
		require.NoError(t, err)
		_, err = st.Namespace("nope")
		require.Error(t, err)
		scan := func(b *store.Bucket, prefix, after string, backward bool) []string {
			var out []string
			var a []byte
			if after != "" {
				a = []byte(after)
			}
			b.Scan([]byte(prefix), a, backward, func(k, v []byte) bool {
				out = append(out, string(k)+"="+string(v))
				return true
			})
			return out
		}
		require.NoError(t, ns.Update(func(tx *store.NamespaceTx) error {
			ev := tx.Bucket("events")
			for _, k := range []string{"s1/1", "s1/2", "s1/4", "s2/1", "s0/9"} {
				require.NoError(t, ev.Put([]byte(k), []byte("v"+k[3:])))
			}
			// Read-your-writes, scans included.
			require.NoError(t, ev.Put([]byte("s1/3"), []byte("v3")))
			require.NoError(t, ev.Delete([]byte("s1/2")))
			assert.Nil(t, ev.Get([]byte("s1/2")))
			assert.Equal(t, []byte("v3"), ev.Get([]byte("s1/3")))
			assert.Equal(t, []string{"1=v1", "3=v3", "4=v4"}, scan(ev, "s1/", "", false))
			require.NoError(t, tx.Bucket("stderr").Put([]byte("s1"), nil))
			assert.Empty(t, tx.Bucket("stderr").Get([]byte("s1")))
			return nil
		}))
		require.NoError(t, pns.View(func(tx *store.NamespaceTx) error {
			ev := tx.Bucket("events")
			assert.Equal(t, []string{"1=v1", "3=v3", "4=v4"}, scan(ev, "s1/", "", false))
			assert.Equal(t, []string{"4=v4", "3=v3", "1=v1"}, scan(ev, "s1/", "", true))
			assert.Equal(t, []string{"3=v3", "4=v4"}, scan(ev, "s1/", "2", false), "after need not be a stored key")
			assert.Equal(t, []string{"1=v1"}, scan(ev, "s1/", "3", true))
			assert.Empty(t, scan(ev, "s3/", "", true))
			var all []string
			require.NoError(t, ev.ForEach(func(k, _ []byte) error { all = append(all, string(k)); return nil }))
			assert.Equal(t, []string{"s0/9", "s1/1", "s1/3", "s1/4", "s2/1"}, all)
			// bbolt answers nil for an empty value read back after its
			// commit; etcd does the same.
			assert.Empty(t, tx.Bucket("stderr").Get([]byte("s1")))
			return nil
		}))
		require.NoError(t, ns.Update(func(tx *store.NamespaceTx) error {
			ev := tx.Bucket("events")
			require.NoError(t, ev.DeletePrefix([]byte("s1/")))
			assert.Empty(t, scan(ev, "s1/", "", false))
			// A put under the prefix after deleting it stays.
			return ev.Put([]byte("s1/7"), []byte("v7"))
		}))
		require.NoError(t, pns.View(func(tx *store.NamespaceTx) error {
			var all []string
			require.NoError(t, tx.Bucket("events").ForEach(func(k, _ []byte) error { all = append(all, string(k)); return nil }))
			assert.Equal(t, []string{"s0/9", "s1/7", "s2/1"}, all)
			return nil
		}))
		assert.Panics(t, func() { _ = ns.View(func(tx *store.NamespaceTx) error { tx.Bucket("undeclared"); return nil }) })
	})
}

// The webhook outbox: appends numbered in commit order by any node, fan-out,
// due deliveries, state moves, listings, requeue and prune.
func TestConformanceWebhookOutbox(t *testing.T) {
	eachEngine(t, func(t *testing.T, st, peer *store.Store) {
		var wg sync.WaitGroup
		for i := range 6 {
			s := []*store.Store{st, peer}[i%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				assert.NoError(t, s.Write(func(tx *store.Tx) error {
					return tx.AppendWebhookEvent(store.WebhookEvent{ID: fmt.Sprintf("e%d", i), Type: "run.succeeded",
						ObjectID: "r", CreatedAt: t0.Add(time.Duration(i) * time.Second)})
				}))
			}()
		}
		wg.Wait()
		var events []store.WebhookEvent
		require.NoError(t, peer.View(func(tx *store.Tx) error {
			assert.Equal(t, 6, tx.CountWebhookOutbox())
			var err error
			events, err = tx.OutboxWebhookEvents(10)
			return err
		}))
		require.Len(t, events, 6)
		seen := map[string]bool{}
		for i, e := range events {
			assert.Equal(t, uint64(i+1), e.Seq, "sequence numbers are dense and never reused")
			seen[e.ID] = true
		}
		assert.Len(t, seen, 6)
		eps := []string{"https://a.example/h", "https://b.example/h"}
		require.NoError(t, st.Write(func(tx *store.Tx) error {
			for _, e := range events {
				if err := tx.FanOutWebhookEvent(e, eps, t0); err != nil {
					return err
				}
			}
			// Twice is harmless.
			return tx.FanOutWebhookEvent(events[0], eps, t0)
		}))
		require.NoError(t, st.Write(func(tx *store.Tx) error {
			d, ok, err := tx.GetWebhookDelivery(eps[0], 1)
			require.NoError(t, err)
			require.True(t, ok)
			d.Status, d.FinishedAt = store.DeliveryDelivered, t0
			require.NoError(t, tx.PutWebhookDelivery(d))
			d2, _, _ := tx.GetWebhookDelivery(eps[0], 2)
			d2.Status, d2.FinishedAt = store.DeliveryFailed, t0
			require.NoError(t, tx.PutWebhookDelivery(d2))
			d3, _, _ := tx.GetWebhookDelivery(eps[0], 3)
			d3.NextAttemptAt = t0.Add(time.Hour)
			return tx.PutWebhookDelivery(d3)
		}))
		require.NoError(t, peer.View(func(tx *store.Tx) error {
			assert.Zero(t, tx.CountWebhookOutbox())
			assert.Equal(t, 4+6, tx.CountWebhookPending(""))
			assert.Equal(t, 4, tx.CountWebhookPending(eps[0]))
			assert.Equal(t, 1, tx.CountWebhookFailed(eps[0]))
			due, next, err := tx.DueWebhookDeliveries(eps[0], t0, 10, nil)
			require.NoError(t, err)
			var seqs []uint64
			for _, d := range due {
				seqs = append(seqs, d.Seq)
			}
			assert.Equal(t, []uint64{4, 5, 6}, seqs)
			assert.True(t, next.Equal(t0.Add(time.Hour)))
			list, err := tx.ListWebhookDeliveries(store.WebhookDeliveryQuery{Limit: 3})
			require.NoError(t, err)
			require.Len(t, list, 3)
			assert.Equal(t, uint64(6), list[0].Seq, "newest event first")
			failed, err := tx.ListWebhookDeliveries(store.WebhookDeliveryQuery{FailedOnly: true, Limit: 10})
			require.NoError(t, err)
			require.Len(t, failed, 1)
			e, ok, err := tx.WebhookEventByID("e0")
			require.NoError(t, err)
			require.True(t, ok)
			ds, err := tx.DeliveriesOfWebhookEvent(e)
			require.NoError(t, err)
			assert.Len(t, ds, 2)
			return nil
		}))
		require.NoError(t, st.Write(func(tx *store.Tx) error { return tx.RequeueWebhookDelivery(2, eps[0], t0) }))
		var pruned int
		require.NoError(t, st.Write(func(tx *store.Tx) error {
			var err error
			pruned, err = tx.PruneWebhooks(t0.Add(time.Minute), 10)
			return err
		}))
		assert.Equal(t, 1, pruned, "the delivered one; the requeued one is pending again")
		require.NoError(t, peer.View(func(tx *store.Tx) error {
			assert.Equal(t, 0, tx.CountWebhookFailed(""))
			_, ok, err := tx.GetWebhookDelivery(eps[0], 1)
			require.NoError(t, err)
			assert.False(t, ok)
			return nil
		}))
	})
}

func TestConformanceIdempotencyAndAPIKeys(t *testing.T) {
	eachEngine(t, func(t *testing.T, st, peer *store.Store) {
		require.NoError(t, st.Update(func(tx *store.Tx) error {
			require.NoError(t, tx.PutIdempotency("key_1", "k1", t0, time.Time{}, []byte("a1")))
			require.NoError(t, tx.PutIdempotency("key_1", "k2", t0.Add(time.Minute), time.Time{}, []byte("a2")))
			// Stored again later: the old index entry goes.
			require.NoError(t, tx.PutIdempotency("key_1", "k1", t0.Add(2*time.Minute), t0, []byte("a1b")))
			return tx.PutAPIKey(store.APIKey{ID: "key_1", Name: "ci", Hash: []byte{1, 2}, CreatedAt: t0})
		}))
		var refs []store.IdempotencyRef
		require.NoError(t, peer.View(func(tx *store.Tx) error {
			doc, ok := tx.GetIdempotency("key_1", "k1")
			assert.True(t, ok)
			assert.Equal(t, []byte("a1b"), doc)
			_, ok = tx.GetIdempotency("key_2", "k1")
			assert.False(t, ok)
			refs = tx.IdempotencyOlderThan(t0.Add(3*time.Minute), 10)
			k, err := tx.GetAPIKey("key_1")
			require.NoError(t, err)
			assert.Equal(t, "ci", k.Name)
			return nil
		}))
		require.Len(t, refs, 2)
		assert.Equal(t, "k2", refs[0].Key)
		stale := store.IdempotencyRef{Scope: "key_1", Key: "k1", Created: t0}
		require.NoError(t, st.Update(func(tx *store.Tx) error {
			require.NoError(t, tx.DeleteIdempotency(stale), "a stale ref deletes nothing")
			return tx.DeleteIdempotency(refs[0])
		}))
		require.NoError(t, peer.View(func(tx *store.Tx) error {
			_, ok := tx.GetIdempotency("key_1", "k1")
			assert.True(t, ok)
			_, ok = tx.GetIdempotency("key_1", "k2")
			assert.False(t, ok)
			return nil
		}))
	})
}
