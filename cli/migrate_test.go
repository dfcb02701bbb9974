package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The command reads data_dir and store.etcd from the daemon's config and
// says what is missing; the copies themselves are tested in daemon
// (TestMigrateOneBoxIntoAClusterAndBack) and store (TestMigrateRoundTrip).
func TestMigrateCommandReadsTheConfig(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(config, []byte("data_dir: "+filepath.Join(dir, "data")+"\nsocket: "+filepath.Join(dir, "s.sock")+
		"\nstore:\n  etcd:\n    endpoints: [http://127.0.0.1:1]\n    prefix: /box/\n"), 0o600))

	res := runCLI(t, nil, nil, nil, "migrate", "--config", config)
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), `"to" not set`)

	res = runCLI(t, nil, nil, nil, "migrate", "--to", "zfs", "--config", config)
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), `--to "zfs": say etcd`)

	res = runCLI(t, nil, nil, nil, "migrate", "--to", "bbolt", "--config", config)
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), "--file: name the new bbolt file to copy etcd's store.etcd.prefix /box/ into")

	res = runCLI(t, nil, nil, nil, "migrate", "--to", "etcd", "--config", config)
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), filepath.Join(dir, "data", "sandbox0d.db"), "the data dir's file, which does not exist")
	_, err := os.Stat(filepath.Join(dir, "data", "sandbox0d.db"))
	assert.True(t, os.IsNotExist(err), "nothing was created")

	// store.type is bbolt here, yet plain http beyond loopback is refused.
	require.NoError(t, os.WriteFile(config, []byte("data_dir: "+filepath.Join(dir, "data")+"\nsocket: "+filepath.Join(dir, "s.sock")+
		"\nstore:\n  etcd:\n    endpoints: [http://10.1.2.3:2379]\n"), 0o600))
	res = runCLI(t, nil, nil, nil, "migrate", "--to", "etcd", "--config", config)
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), "store.etcd.endpoints")
	assert.Contains(t, res.err.Error(), "allow_plaintext")
}

// keys rotate --etcd reads the config and needs the writable copy.
func TestKeysRotateEtcdNeedsACopy(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(config, []byte("data_dir: "+filepath.Join(dir, "data")+"\nsocket: "+filepath.Join(dir, "s.sock")+
		"\nstore:\n  etcd:\n    endpoints: [http://127.0.0.1:1]\n"), 0o600))
	res := runCLI(t, nil, nil, nil, "keys", "rotate", "--etcd", "--config", config)
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), "--identity-file: name a writable copy of the cluster's identity file")
	res = runCLI(t, nil, nil, nil, "keys", "rotate", "--etcd", "--offline", "--config", config)
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), "choose one")
}
