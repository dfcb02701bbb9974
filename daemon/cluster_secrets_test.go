package daemon_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/daemon"
)

// Secrets in a cluster (issue 25, point 7): every node must hold the same
// age identity. A node joining with another identity, or none, finds the
// sealed tokens in etcd that it cannot open and refuses to start, naming
// its identity file; the nodes already serving are not disturbed. With the
// cluster's identity it starts and opens the token another node sealed.
func TestClusterNodeWithAnotherIdentityRefusesToStart(t *testing.T) {
	rig := newClusterRig(t, 1)
	c0 := rig.nodes[0].client()
	dep, err := c0.Beta.Deployments.New(t.Context(), createParams("sealed")) // a repository token, sealed
	require.NoError(t, err)

	joinCfg := func(dir, name string) daemon.Config {
		cfg := baseConfig(dir)
		cfg.Socket = filepath.Join(dir, "s.sock")
		cfg.Store = daemon.StoreConfig{Type: "etcd", Etcd: daemon.StoreEtcdConfig{ReadMirror: true, Endpoints: rig.etcd.Endpoints(), Prefix: rig.prefix,
			DialTimeout: 5 * time.Second, RequestTimeout: 5 * time.Second}}
		cfg.Cluster = daemon.ClusterConfig{NodeName: name, LeaseTTL: 2 * time.Second}
		return cfg
	}

	// No identity on the new node: refused, and none is made up.
	dir := t.TempDir()
	cfg := joinCfg(dir, "node-fresh")
	identity := filepath.Join(cfg.DataDir, "keys", "identity.age.txt")
	_, err = daemon.New(cfg, slog.New(slog.DiscardHandler), daemon.Options{Backend: rig.backend, Now: rig.clock.Now})
	require.Error(t, err, "a node without the cluster's identity must not start")
	assert.Contains(t, err.Error(), identity, "the message names the identity file")
	_, statErr := os.Stat(identity)
	assert.True(t, os.IsNotExist(statErr), "no new identity was created")

	// Another identity: refused the same way.
	other := filepath.Join(t.TempDir(), "other-identity.txt")
	_, _, err = crypto.LoadOrCreateKeyring(other, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	cfg = joinCfg(t.TempDir(), "node-other")
	cfg.IdentityFile = other
	_, err = daemon.New(cfg, slog.New(slog.DiscardHandler), daemon.Options{Backend: rig.backend, Now: rig.clock.Now})
	require.Error(t, err, "a node with another identity must not start")
	assert.Contains(t, err.Error(), other, "the message names the identity file")
	assert.Contains(t, err.Error(), "every node must hold the same age identity")
	t.Logf("refused: %v", err)

	// The cluster still serves.
	_, err = c0.Beta.Deployments.Get(t.Context(), dep.ID, anthropic.BetaDeploymentGetParams{})
	require.NoError(t, err)

	// The cluster's identity (a copy of node-0's, as a systemd credential
	// would hand it to every node): it starts and opens node-0's token.
	shared := filepath.Join(t.TempDir(), "cluster-identity.txt")
	require.NoError(t, os.WriteFile(shared, mustReadFile(t, rig.nodes[0].d.IdentityPathForTest()), 0o600))
	cfg = joinCfg(t.TempDir(), "node-joined")
	cfg.IdentityFile = shared
	logs := &syncBuffer{}
	d, err := daemon.New(cfg, slog.New(slog.NewTextHandler(logs, nil)), daemon.Options{Backend: rig.backend, Now: rig.clock.Now})
	require.NoError(t, err)
	joined := startDaemon(t, d, cfg, logs)
	c1 := joined.client()
	_, err = c1.Beta.Deployments.Run(t.Context(), dep.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err, "the joined node runs a deployment whose token node-0 sealed")
	reqs := rig.backend.Requests()
	require.NotEmpty(t, reqs)
	assert.Equal(t, "ghp_persist_me", reqs[len(reqs)-1].Resources[0].AuthorizationToken)
}
