package daemon_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
)

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(data)
}

func TestMissingIdentityWithSealedDataRefusesToStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := baseConfig(dir)
	backend := sessionstest.New(map[string]int64{"agent_a": 1})
	r := start(t, cfg, daemon.Options{Backend: backend})
	c := r.client()
	_, err := c.Beta.Deployments.New(t.Context(), createParams("sealed"))
	require.NoError(t, err)
	r.stop(t)

	identity := filepath.Join(cfg.DataDir, "keys", "identity.age.txt")
	require.NoError(t, os.Rename(identity, identity+".bak"))
	db := filepath.Join(cfg.DataDir, "sandbox0d.db")
	before := fileHash(t, db)

	_, err = daemon.New(cfg, slog.New(slog.DiscardHandler), daemon.Options{Backend: backend})
	require.Error(t, err)
	assert.Contains(t, err.Error(), identity, "the message names the identity file")
	assert.Contains(t, err.Error(), "Restore")
	assert.Equal(t, before, fileHash(t, db), "the database is untouched")
	_, statErr := os.Stat(identity)
	assert.True(t, os.IsNotExist(statErr), "no new identity was created over the lost one")

	// A wrong identity is refused the same way.
	_, _, err = crypto.LoadOrCreateKeyring(identity, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	_, err = daemon.New(cfg, slog.New(slog.DiscardHandler), daemon.Options{Backend: backend})
	require.Error(t, err)
	assert.Equal(t, before, fileHash(t, db))

	// Restoring the backup brings everything back.
	require.NoError(t, os.Rename(identity+".bak", identity))
	r = start(t, cfg, daemon.Options{Backend: backend})
	c = r.client()
	list, err := c.Beta.Deployments.List(t.Context(), anthropic.BetaDeploymentListParams{})
	require.NoError(t, err)
	_, err = c.Beta.Deployments.Run(t.Context(), list.Data[0].ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	assert.Equal(t, "ghp_persist_me", backend.Requests()[0].Resources[0].AuthorizationToken)
}

func TestKeyRotationThroughTheDaemon(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := baseConfig(dir)
	backend := sessionstest.New(map[string]int64{"agent_a": 1})
	r := start(t, cfg, daemon.Options{Backend: backend})
	c := r.client()
	var ids []string
	for range 3 {
		d, err := c.Beta.Deployments.New(t.Context(), createParams("rot"))
		require.NoError(t, err)
		ids = append(ids, d.ID)
	}
	identity := filepath.Join(cfg.DataDir, "keys", "identity.age.txt")
	old, err := crypto.LoadKeyring(identity)
	require.NoError(t, err)
	oldFile := filepath.Join(dir, "old-identity.txt")
	require.NoError(t, os.WriteFile(oldFile, mustReadFile(t, identity), 0o600))

	resp, err := socketClient(cfg.Socket).Post("http://s/admin/keys/rotate", "application/json", nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, "%s", body)
	assert.Contains(t, string(body), `"resealed":3`)

	// The running daemon opens tokens with the new identity.
	_, err = c.Beta.Deployments.Run(t.Context(), ids[0], anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	assert.Equal(t, "ghp_persist_me", backend.Requests()[0].Resources[0].AuthorizationToken)
	r.stop(t)

	now, err := crypto.LoadKeyring(identity)
	require.NoError(t, err)
	assert.Equal(t, 1, now.Len(), "old identities are retired")
	assert.NotEqual(t, old.PrimaryRecipient(), now.PrimaryRecipient())

	// The old identity alone opens nothing any more; the new one opens all.
	raw, err := os.ReadFile(filepath.Join(cfg.DataDir, "sandbox0d.db"))
	require.NoError(t, err)
	assert.False(t, bytes.Contains(raw, []byte("ghp_persist_me")))
	cfgOld := cfg
	cfgOld.IdentityFile = oldFile
	_, err = daemon.New(cfgOld, slog.New(slog.DiscardHandler), daemon.Options{Backend: backend})
	require.Error(t, err, "the retired identity no longer opens the secrets")
	r = start(t, cfg, daemon.Options{Backend: backend})
	c = r.client()
	_, err = c.Beta.Deployments.Run(t.Context(), ids[2], anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	assert.Equal(t, "ghp_persist_me", backend.Requests()[1].Resources[0].AuthorizationToken)
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return data
}

// The dead end: after a rotation, restoring an older backup left a
// daemon that refused to start and said to set the tokens again, which
// needs a running daemon. The refusal names the way out, and the way out
// (forget the tokens no identity opens) makes the daemon start with every
// deployment kept.
func TestRestoredBackupAfterRotationHasAWayOut(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := baseConfig(dir)
	backend := sessionstest.New(map[string]int64{"agent_a": 1})
	r := start(t, cfg, daemon.Options{Backend: backend})
	first := r.client()
	_, err := first.Beta.Deployments.New(t.Context(), createParams("before-rotation"))
	require.NoError(t, err)
	r.stop(t)
	db := filepath.Join(cfg.DataDir, "sandbox0d.db")
	backup, err := os.ReadFile(db)
	require.NoError(t, err)

	r = start(t, cfg, daemon.Options{Backend: backend})
	status, _ := do(t, socketClient(cfg.Socket), "POST", "http://s/admin/keys/rotate", "", nil)
	require.Equal(t, 200, status)
	r.stop(t)
	require.NoError(t, os.WriteFile(db, backup, 0o600)) // restore the pre-rotation backup

	_, err = daemon.New(cfg, slog.New(slog.DiscardHandler), daemon.Options{Backend: backend})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "keys forget-unopenable")

	forgotten, err := daemon.ForgetUnopenableOffline(cfg.DataDir, "", nil, false)
	require.NoError(t, err)
	require.Len(t, forgotten, 1)
	assert.Equal(t, "https://github.com/acme/repo", forgotten[0].URL)

	r = start(t, cfg, daemon.Options{Backend: backend})
	c := r.client()
	list, err := c.Beta.Deployments.List(t.Context(), anthropic.BetaDeploymentListParams{})
	require.NoError(t, err)
	require.Len(t, list.Data, 1, "the deployment is kept")
	_, err = c.Beta.Deployments.Run(t.Context(), list.Data[0].ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	reqs := backend.Requests()
	last := reqs[len(reqs)-1]
	require.Len(t, last.Resources, 1, "the resource is kept")
	assert.Empty(t, last.Resources[0].AuthorizationToken, "without its token")
}
