package daemon_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/store/storetest"
)

// `keys rotate` across a cluster (issue 25 item 7): node A rotates (one
// transaction re-seals every token and records the new recipient); node B,
// still on the old identity file, refuses to seal, naming its identity file
// and the way out, until a reload (what SIGHUP calls) gives it A's new
// identity file; then it seals again, and each node opens what the other
// sealed. A reload with an identity that opens nothing is refused and
// changes nothing.
func TestClusterKeysRotateAcrossNodes(t *testing.T) {
	etcd := storetest.Start(t, 3)
	backend := sessionstest.New(map[string]int64{"agent_a": 1})
	identity := filepath.Join(t.TempDir(), "cluster-identity.txt")
	_, _, err := crypto.LoadOrCreateKeyring(identity, slog.New(slog.DiscardHandler))
	require.NoError(t, err)

	type node struct {
		r   *running
		cfg daemon.Config
	}
	startNode := func(name string) node {
		dir := t.TempDir()
		cfg := baseConfig(dir)
		cfg.Store = daemon.StoreConfig{Type: "etcd", Etcd: daemon.StoreEtcdConfig{ReadMirror: true, Endpoints: etcd.Endpoints(), Prefix: "/rotate/",
			DialTimeout: 5 * time.Second, RequestTimeout: 5 * time.Second}}
		cfg.Cluster = daemon.ClusterConfig{NodeName: name, LeaseTTL: 2 * time.Second}
		cfg.Runs.Retention.Interval = time.Hour // Reload validates the whole config
		// Each machine holds its own copy of the cluster's identity.
		cfg.IdentityFile = filepath.Join(dir, "identity.age.txt")
		require.NoError(t, os.WriteFile(cfg.IdentityFile, mustReadFile(t, identity), 0o600))
		return node{r: start(t, cfg, daemon.Options{Backend: backend}), cfg: cfg}
	}
	a, b := startNode("node-a"), startNode("node-b")
	ca, cb := a.r.client(), b.r.client()
	ctx := t.Context()
	lastToken := func() string {
		reqs := backend.Requests()
		require.NotEmpty(t, reqs)
		return reqs[len(reqs)-1].Resources[0].AuthorizationToken
	}

	onA, err := ca.Beta.Deployments.New(ctx, createParams("sealed-on-a"))
	require.NoError(t, err)
	onB, err := cb.Beta.Deployments.New(ctx, createParams("sealed-on-b"))
	require.NoError(t, err, "same identity: B seals")

	// Rotate on A.
	status, res := do(t, socketClient(a.cfg.Socket), http.MethodPost, "http://s/admin/keys/rotate", "", nil)
	require.Equal(t, http.StatusOK, status, "%v", res)
	assert.EqualValues(t, 2, res["resealed"])
	newRecipient := res["recipient"].(string)

	// B, on the old identity, refuses to seal, and says why and what to do.
	_, err = cb.Beta.Deployments.New(ctx, createParams("refused-on-b"))
	var apiErr *anthropic.Error
	require.True(t, errors.As(err, &apiErr), "%v", err)
	assert.Equal(t, http.StatusServiceUnavailable, apiErr.StatusCode)
	for _, want := range []string{b.cfg.IdentityFile, newRecipient, "keys rotate", "reload this node (SIGHUP", "resources[0].authorization_token"} {
		assert.Contains(t, apiErr.Error(), want)
	}
	_, err = cb.Beta.Deployments.New(ctx, withoutToken(createParams("no-secret-on-b")))
	require.NoError(t, err, "what needs no sealing still works on B")
	_, err = ca.Beta.Deployments.New(ctx, createParams("sealed-on-a-after"))
	require.NoError(t, err, "A seals with the new identity")

	// A reload that finds the same file changes nothing; one with an
	// identity that opens none of the secrets is refused and keeps the
	// running one.
	require.NoError(t, b.r.d.Reload(b.cfg))
	_, err = cb.Beta.Deployments.New(ctx, createParams("still-refused-on-b"))
	require.Error(t, err)
	stranger := filepath.Join(t.TempDir(), "stranger.txt")
	_, _, err = crypto.LoadOrCreateKeyring(stranger, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(b.cfg.IdentityFile, mustReadFile(t, stranger), 0o600))
	err = b.r.d.Reload(b.cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot be opened by its identities; keeping the running identity")

	// A's new identity file on B, then the reload SIGHUP runs: B seals
	// again, and opens the tokens A re-sealed.
	require.NoError(t, os.WriteFile(b.cfg.IdentityFile, mustReadFile(t, a.cfg.IdentityFile), 0o600))
	require.NoError(t, b.r.d.Reload(b.cfg))
	afterB, err := cb.Beta.Deployments.New(ctx, createParams("sealed-on-b-after"))
	require.NoError(t, err, "B seals once it has the new identity")
	for _, id := range []string{onA.ID, onB.ID} {
		_, err = cb.Beta.Deployments.Run(ctx, id, anthropic.BetaDeploymentRunParams{})
		require.NoError(t, err)
		assert.Equal(t, "ghp_persist_me", lastToken(), "B opens %s, re-sealed by A", id)
	}
	_, err = ca.Beta.Deployments.Run(ctx, afterB.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	assert.Equal(t, "ghp_persist_me", lastToken(), "A opens what B sealed after its reload")

	// A node joining now with the old identity file is refused at start:
	// it opens none of the re-sealed tokens.
	dir := t.TempDir()
	cfg := baseConfig(dir)
	cfg.Store, cfg.Cluster = b.cfg.Store, daemon.ClusterConfig{NodeName: "node-late", LeaseTTL: 2 * time.Second}
	cfg.IdentityFile = identity
	_, err = daemon.New(cfg, slog.New(slog.DiscardHandler), daemon.Options{Backend: backend})
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprint(identity))
}

func withoutToken(p anthropic.BetaDeploymentNewParams) anthropic.BetaDeploymentNewParams {
	p.Resources = nil
	return p
}

// With the identity as a systemd credential the daemon cannot rewrite it,
// so a cluster rotates from a writable copy, against etcd
// (`keys rotate --etcd --identity-file COPY`): the node refuses to seal from
// the commit on, and, restarted with the rotated copy as its credential,
// seals again and opens the re-sealed token.
func TestClusterKeysRotateFromACopyOfTheCredential(t *testing.T) {
	etcd := storetest.Start(t, 3)
	backend := sessionstest.New(map[string]int64{"agent_a": 1})
	creds := t.TempDir()
	credential := filepath.Join(creds, crypto.CredentialName)
	_, _, err := crypto.LoadOrCreateKeyring(credential, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Setenv("CREDENTIALS_DIRECTORY", creds)

	dir := t.TempDir()
	cfg := baseConfig(dir)
	cfg.Store = daemon.StoreConfig{Type: "etcd", Etcd: daemon.StoreEtcdConfig{ReadMirror: true, Endpoints: etcd.Endpoints(), Prefix: "/rotate-credential/",
		DialTimeout: 5 * time.Second, RequestTimeout: 5 * time.Second}}
	cfg.Cluster = daemon.ClusterConfig{NodeName: "node-a", LeaseTTL: 2 * time.Second}
	n := start(t, cfg, daemon.Options{Backend: backend})
	c := n.client()
	dep, err := c.Beta.Deployments.New(t.Context(), createParams("sealed"))
	require.NoError(t, err)
	status, _ := do(t, socketClient(cfg.Socket), http.MethodPost, "http://s/admin/keys/rotate", "", nil)
	require.Equal(t, http.StatusConflict, status, "a credential cannot be rotated in place")

	cp := filepath.Join(t.TempDir(), "identity-copy.txt")
	require.NoError(t, os.WriteFile(cp, mustReadFile(t, credential), 0o600))
	recipient, resealed, err := daemon.RotateCluster(cfg, cp, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	assert.Equal(t, 1, resealed)
	_, err = c.Beta.Deployments.New(t.Context(), createParams("refused"))
	var apiErr *anthropic.Error
	require.True(t, errors.As(err, &apiErr), "%v", err)
	assert.Equal(t, http.StatusServiceUnavailable, apiErr.StatusCode)
	assert.Contains(t, apiErr.Error(), credential)
	assert.Contains(t, apiErr.Error(), recipient)

	// The rotated copy installed as the credential; the node restarted.
	n.stop(t)
	require.NoError(t, os.WriteFile(credential, mustReadFile(t, cp), 0o600))
	n = start(t, cfg, daemon.Options{Backend: backend})
	c = n.client()
	_, err = c.Beta.Deployments.New(t.Context(), createParams("sealed-after"))
	require.NoError(t, err)
	_, err = c.Beta.Deployments.Run(t.Context(), dep.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	reqs := backend.Requests()
	assert.Equal(t, "ghp_persist_me", reqs[len(reqs)-1].Resources[0].AuthorizationToken)
}
