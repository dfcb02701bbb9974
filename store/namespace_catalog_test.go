package store

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// The catalog namespace opens the buckets the local namespace held before
// it (local_api_agents, …): a file written by an older binary is read as
// it is, with no migration. It is shared in cluster mode; the sessions'
// namespace is not.
func TestCatalogNamespaceKeepsTheLocalBucketNames(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	st, err := Open(path, Options{})
	require.NoError(t, err)
	// An older binary's write, straight into the bucket by its name.
	require.NoError(t, st.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("local_api_vaults")).Put([]byte("vlt_old"), []byte(`{"id":"vlt_old"}`))
	}))
	catalog, err := st.Namespace(NamespaceCatalog)
	require.NoError(t, err)
	require.NoError(t, catalog.Update(func(tx *NamespaceTx) error {
		assert.Equal(t, `{"id":"vlt_old"}`, string(tx.Bucket("api_vaults").Get([]byte("vlt_old"))))
		return tx.Bucket("api_agents").Put([]byte("agent_new/1"), []byte("{}"))
	}))
	require.NoError(t, st.db.View(func(tx *bolt.Tx) error {
		assert.Equal(t, "{}", string(tx.Bucket([]byte("local_api_agents")).Get([]byte("agent_new/1"))))
		return nil
	}))
	// A sibling handle reaches the same buckets with the same cursor codec.
	local, err := st.Namespace(NamespaceLocal)
	require.NoError(t, err)
	sib, err := local.Sibling(NamespaceCatalog)
	require.NoError(t, err)
	require.NoError(t, sib.View(func(tx *NamespaceTx) error {
		assert.NotNil(t, tx.Bucket("api_agents").Get([]byte("agent_new/1")))
		return nil
	}))
	token := local.Cursors().Encode("scope", []byte("x"))
	got, err := sib.Cursors().Decode("scope", token)
	require.NoError(t, err)
	assert.Equal(t, "x", string(got))
	require.NoError(t, st.Close())

	assert.True(t, IsShared(NamespaceCatalog))
	assert.True(t, IsShared(NamespaceSessionIndex))
	assert.False(t, IsShared(NamespaceLocal))
	assert.ElementsMatch(t, []string{"", NamespaceCatalog, NamespaceSessionIndex}, SharedNamespaces)
}
