package store_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/store/storetest"
)

// fillForMigration writes enough of every kind that each bucket needs
// several transactions at maxTxnOps 16: deployments and their indexes,
// runs, API keys, webhook events (the outbox's sequence), and a local
// session namespace record that must NOT travel (it is node-local).
func fillForMigration(t *testing.T, st *store.Store) {
	t.Helper()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	require.NoError(t, st.Update(func(tx *store.Tx) error {
		for i := range 40 {
			id := fmt.Sprintf("depl_%03d", i)
			if err := tx.PutDeployment(store.DeploymentIndex{ID: id, CreatedAt: base.Add(time.Duration(i) * time.Second), AgentID: "agent_a"},
				[]byte(fmt.Sprintf(`{"id":%q,"token":"age-sealed-%d"}`, id, i))); err != nil {
				return err
			}
			if err := tx.PutRun(store.RunIndex{ID: fmt.Sprintf("run_%03d", i), DeploymentID: id, CreatedAt: base.Add(time.Duration(i) * time.Minute),
				Scheduled: true, ScheduledAt: base.Add(time.Duration(i) * time.Minute)}, []byte(`{"run":true}`)); err != nil {
				return err
			}
			if err := tx.AppendWebhookEvent(store.WebhookEvent{ID: fmt.Sprintf("evt_%03d", i), Type: "deployment.created", ObjectID: id, CreatedAt: base}); err != nil {
				return err
			}
		}
		for i := range 3 {
			if err := tx.PutAPIKey(store.APIKey{ID: fmt.Sprintf("key_%d", i), Name: "k", Hash: []byte{1, 2, byte(i)}, CreatedAt: base}); err != nil {
				return err
			}
		}
		return nil
	}))
	ns, err := st.Namespace(store.NamespaceLocal)
	require.NoError(t, err)
	require.NoError(t, ns.Update(func(tx *store.NamespaceTx) error {
		return tx.Bucket("sessions").Put([]byte("sesn_local"), []byte(`{"id":"sesn_local"}`))
	}))
	// An agent created through the API: the catalog is shared in a cluster.
	cat, err := st.Namespace(store.NamespaceCatalog)
	require.NoError(t, err)
	require.NoError(t, cat.Update(func(tx *store.NamespaceTx) error {
		return tx.Bucket("api_agents").Put([]byte("agent_01/00000001"), []byte(`{"id":"agent_01","version":1}`))
	}))
}

func countOf(counts []store.NamespaceCount, ns, bucket string) int {
	for _, c := range counts {
		for _, b := range c.Buckets {
			if c.Namespace == ns && b.Bucket == bucket {
				return b.Keys
			}
		}
	}
	return -1
}

// bbolt → etcd → a new bbolt file: every shared bucket arrives byte for
// byte (verified inside Migrate by count, sequence and digest; checked here
// through the typed API), in transactions within max_txn_ops; the cursor
// secret travels, so a token issued before decodes after; the outbox's
// sequence continues instead of restarting; the local namespace stays.
func TestMigrateRoundTrip(t *testing.T) {
	src, err := store.Open(filepath.Join(t.TempDir(), store.FileName), store.Options{NoSync: true})
	require.NoError(t, err)
	defer src.Close()
	fillForMigration(t, src)
	token := src.Cursors().Encode("runs", []byte("position-before"))

	c := storetest.Shared(t)
	prefix := storetest.Prefix(t)
	mid, err := store.OpenEtcd(store.EtcdOptions{Endpoints: c.Endpoints(), Prefix: prefix, MaxTxnOps: 16})
	require.NoError(t, err)
	defer mid.Close()
	batches := 0
	counts, err := store.Migrate(src, mid, store.MigrateOptions{Progress: func(_ string, n int) {
		batches++
		assert.LessOrEqual(t, n, 16, "a batch fits max_txn_ops")
	}})
	require.NoError(t, err)
	assert.Greater(t, batches, 12, "40 documents per bucket at 16 per transaction take several")
	assert.Equal(t, 40, countOf(counts, "", "deployments"))
	assert.Equal(t, 40, countOf(counts, "", "runs"))
	assert.Equal(t, 40, countOf(counts, "", "webhook_outbox"))
	assert.Equal(t, 3, countOf(counts, "", "api_keys"))
	assert.Equal(t, 0, countOf(counts, store.NamespaceSessionIndex, "session_index_sessions"))
	assert.Equal(t, 1, countOf(counts, store.NamespaceCatalog, "local_api_agents"), "the API catalog is shared, so it travels")
	assert.Equal(t, -1, countOf(counts, store.NamespaceLocal, "local_sessions"), "the node-local namespace is not copied")

	// The cursor secret travelled: a token issued on the file decodes on etcd,
	// also for a store opened afresh on the prefix (as a node would).
	again, err := store.OpenEtcd(store.EtcdOptions{Endpoints: c.Endpoints(), Prefix: prefix})
	require.NoError(t, err)
	defer again.Close()
	payload, err := again.Cursors().Decode("runs", token)
	require.NoError(t, err)
	assert.Equal(t, "position-before", string(payload))

	// The sequence continues.
	require.NoError(t, again.Update(func(tx *store.Tx) error {
		return tx.AppendWebhookEvent(store.WebhookEvent{ID: "evt_after", Type: "deployment.created", ObjectID: "x", CreatedAt: time.Now()})
	}))
	var events []store.WebhookEvent
	require.NoError(t, again.View(func(tx *store.Tx) error {
		events, err = tx.OutboxWebhookEvents(100)
		return err
	}))
	require.Len(t, events, 41)
	assert.Equal(t, uint64(41), events[40].Seq, "the outbox's sequence continues past the copied events")

	// A second migration into the same prefix is refused: never a merge.
	_, err = store.Migrate(src, again, store.MigrateOptions{})
	require.ErrorIs(t, err, store.ErrTargetNotEmpty)
	assert.Contains(t, err.Error(), "etcdctl del --prefix "+prefix)

	// And back, into a new file.
	backPath := filepath.Join(t.TempDir(), store.FileName)
	back, err := store.Open(backPath, store.Options{NoSync: true})
	require.NoError(t, err)
	defer back.Close()
	counts, err = store.Migrate(again, back, store.MigrateOptions{})
	require.NoError(t, err)
	assert.Equal(t, 41, countOf(counts, "", "webhook_outbox"))
	payload, err = back.Cursors().Decode("runs", token)
	require.NoError(t, err)
	assert.Equal(t, "position-before", string(payload))
	var docs int
	require.NoError(t, back.View(func(tx *store.Tx) error {
		return tx.ForEachDeployment(func(id string, doc []byte) error {
			docs++
			if id == "depl_007" {
				assert.JSONEq(t, `{"id":"depl_007","token":"age-sealed-7"}`, string(doc))
			}
			return nil
		})
	}))
	assert.Equal(t, 40, docs)
	assert.Empty(t, back.Check())

	// The node-local namespace travels only when asked for (migrate
	// --to bbolt brings the node's own sessions along).
	counts, err = store.CopyNamespaces(src, back, store.MigrateOptions{Namespaces: []string{store.NamespaceLocal}})
	require.NoError(t, err)
	assert.Equal(t, 1, countOf(counts, store.NamespaceLocal, "local_sessions"))
	_, err = store.CopyNamespaces(src, back, store.MigrateOptions{Namespaces: []string{store.NamespaceLocal}})
	require.ErrorIs(t, err, store.ErrTargetNotEmpty)

	// A used file is not a target either.
	_, err = store.Migrate(again, src, store.MigrateOptions{})
	require.ErrorIs(t, err, store.ErrTargetNotEmpty)
	assert.Contains(t, err.Error(), "name a file that does not exist yet")
}

// Live nodes' keys make a prefix non-empty, and LiveNodes names them (the
// way back refuses to copy a prefix nodes still write to).
func TestMigrateSeesLiveNodes(t *testing.T) {
	c := storetest.Shared(t)
	prefix := storetest.Prefix(t)
	st, err := store.OpenEtcd(store.EtcdOptions{Endpoints: c.Endpoints(), Prefix: prefix})
	require.NoError(t, err)
	defer st.Close()
	nodes, err := st.LiveNodes()
	require.NoError(t, err)
	assert.Empty(t, nodes)
	cli := c.Client(t)
	_, err = cli.Put(t.Context(), prefix+"nodes/node-a", `{"name":"node-a"}`)
	require.NoError(t, err)
	nodes, err = st.LiveNodes()
	require.NoError(t, err)
	assert.Equal(t, []string{"node-a"}, nodes)

	src, err := store.Open(filepath.Join(t.TempDir(), store.FileName), store.Options{NoSync: true})
	require.NoError(t, err)
	defer src.Close()
	_, err = store.Migrate(src, st, store.MigrateOptions{})
	require.ErrorIs(t, err, store.ErrTargetNotEmpty)
	assert.Contains(t, err.Error(), prefix+"nodes/node-a")
}

// A source written by a newer binary is refused before anything is copied.
func TestMigrateRefusesAnotherSchemaVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	src, err := store.Open(path, store.Options{NoSync: true})
	require.NoError(t, err)
	require.NoError(t, store.SetSchemaVersionForTest(src, store.SchemaVersion+1))
	dst, err := store.Open(filepath.Join(t.TempDir(), store.FileName), store.Options{NoSync: true})
	require.NoError(t, err)
	defer dst.Close()
	_, err = store.Migrate(src, dst, store.MigrateOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("schema version %d", store.SchemaVersion+1))
	require.NoError(t, src.Close())
	_, statErr := os.Stat(path)
	require.NoError(t, statErr)
}
