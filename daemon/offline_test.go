package daemon_test

import (
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/store"
)

func TestOfflineRotateAndCompact(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := baseConfig(dir)
	backend := sessionstest.New(map[string]int64{"agent_a": 1})
	r := start(t, cfg, daemon.Options{Backend: backend})
	c := r.client()
	d, err := c.Beta.Deployments.New(t.Context(), createParams("offline"))
	require.NoError(t, err)
	for range 50 {
		_, err := c.Beta.Deployments.Run(t.Context(), d.ID, anthropic.BetaDeploymentRunParams{})
		require.NoError(t, err)
	}

	// While the daemon runs, offline maintenance is refused by the lock
	// (each waits out the store's lock timeout first: both wait at once).
	var rotateErr, compactErr error
	var wg sync.WaitGroup
	wg.Go(func() { _, _, rotateErr = daemon.RotateOffline(cfg.DataDir, "", slog.New(slog.DiscardHandler)) })
	wg.Go(func() { _, _, compactErr = daemon.CompactOffline(cfg.DataDir) })
	wg.Wait()
	require.ErrorIs(t, rotateErr, store.ErrLocked)
	require.ErrorIs(t, compactErr, store.ErrLocked)
	r.stop(t)

	identity := filepath.Join(cfg.DataDir, "keys", "identity.age.txt")
	old, err := crypto.LoadKeyring(identity)
	require.NoError(t, err)
	recipient, n, err := daemon.RotateOffline(cfg.DataDir, "", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.NotEqual(t, old.PrimaryRecipient(), recipient)

	before, after, err := daemon.CompactOffline(cfg.DataDir)
	require.NoError(t, err)
	assert.LessOrEqual(t, after, before)

	// Everything survives: the deployment, its runs, and its token.
	r = start(t, cfg, daemon.Options{Backend: backend})
	c = r.client()
	runs, err := c.Beta.DeploymentRuns.List(t.Context(), anthropic.BetaDeploymentRunListParams{Limit: anthropic.Int(100)})
	require.NoError(t, err)
	assert.Len(t, runs.Data, 50)
	_, err = c.Beta.Deployments.Run(t.Context(), d.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	reqs := backend.Requests()
	assert.Equal(t, "ghp_persist_me", reqs[len(reqs)-1].Resources[0].AuthorizationToken)
}
