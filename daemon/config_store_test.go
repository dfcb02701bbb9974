package daemon_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
)

func TestStoreConfigDefaultsAndEnvEndpoints(t *testing.T) {
	cfg, err := daemon.LoadConfig(newViperWithFlags(t), writeConfig(t, "data_dir: /tmp/x\n"))
	require.NoError(t, err)
	assert.Equal(t, "bbolt", cfg.Store.Type)
	assert.Equal(t, "/sandbox0d/", cfg.Store.Etcd.Prefix)
	assert.Equal(t, 10*time.Second, cfg.Cluster.LeaseTTL)
	assert.NotEmpty(t, cfg.Cluster.NodeName, "the host name")

	t.Setenv("SANDBOX0D_STORE_ETCD_ENDPOINTS", "http://127.0.0.1:2379, http://127.0.0.1:22379")
	cfg, err = daemon.LoadConfig(newViperWithFlags(t), writeConfig(t, "data_dir: /tmp/x\nstore:\n  type: etcd\n"))
	require.NoError(t, err)
	assert.Equal(t, "etcd", cfg.Store.Type)
	assert.Len(t, cfg.Store.Etcd.Endpoints, 2)
}

func TestStoreConfigRefusals(t *testing.T) {
	for name, c := range map[string]struct{ yaml, key, says string }{
		"plain http beyond loopback": {"store: {type: etcd, etcd: {endpoints: [http://10.0.0.5:2379]}}", "store.etcd.endpoints", "allow_plaintext"},
		"no endpoints":               {"store: {type: etcd}", "store.etcd.endpoints", "SANDBOX0D_STORE_ETCD_ENDPOINTS"},
		"unknown type":               {"store: {type: sqlite}", "store.type", "bbolt or etcd"},
		"prefix without slash":       {"store: {type: etcd, etcd: {endpoints: [http://127.0.0.1:2379], prefix: /a}}", "store.etcd.prefix", "must end"},
		"cert without key":           {"store: {type: etcd, etcd: {endpoints: [https://e:2379], cert_file: /c}}", "store.etcd.cert_file", "together"},
		"lease too short":            {"store: {type: etcd, etcd: {endpoints: [http://127.0.0.1:2379]}}\ncluster: {lease_ttl: 1s}", "cluster.lease_ttl", "at least 2s"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := daemon.LoadConfig(newViperWithFlags(t), writeConfig(t, "data_dir: /tmp/x\n"+c.yaml+"\n"))
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.key)
			assert.Contains(t, err.Error(), c.says)
		})
	}
	_, err := daemon.LoadConfig(newViperWithFlags(t), writeConfig(t,
		"data_dir: /tmp/x\nstore: {type: etcd, etcd: {endpoints: [http://10.0.0.5:2379], allow_plaintext: true}}\n"))
	require.NoError(t, err, "allowed explicitly")
}
