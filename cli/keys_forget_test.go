package cli

import (
	"encoding/json"
	"iter"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/store"
)

// A data dir whose tokens were sealed by an identity that is gone (a backup
// restored after a rotation): forget-unopenable lists them, drops only
// them, and the daemon's startup check then passes.
func TestKeysForgetUnopenableGolden(t *testing.T) {
	dataDir := t.TempDir()
	dbPath := filepath.Join(dataDir, store.FileName)
	st, err := store.Open(dbPath, store.Options{})
	require.NoError(t, err)
	gone, err := crypto.GenerateKeyring()
	require.NoError(t, err)
	identityPath := filepath.Join(dataDir, "keys", "identity.age.txt")
	current, _, err := crypto.LoadOrCreateKeyring(identityPath, slog.New(slog.DiscardHandler))
	require.NoError(t, err)

	labels := map[string]string{}
	create := func(sealer *crypto.Keyring, label, name string, resources ...any) string {
		svc := deployments.NewService(deployments.Config{Store: st, Backend: sessionstest.New(map[string]int64{"agent_a": 1}), Sealer: sealer})
		body, _ := json.Marshal(map[string]any{"name": name, "agent": map[string]any{"id": "agent_a", "version": 1},
			"environment_id": "env_1", "initial_events": []any{userMessage("go")}, "resources": resources})
		in, err := deployments.DecodeCreate(body)
		require.NoError(t, err)
		d, err := svc.Create(t.Context(), in)
		require.NoError(t, err)
		labels[d.ID] = "depl_" + label + strings.Repeat("_", len(d.ID)-len("depl_"+label))
		return d.ID
	}
	repo := func(url, token string) any {
		r := map[string]any{"type": "github_repository", "url": url}
		if token != "" {
			r["authorization_token"] = token
		}
		return r
	}
	restored := create(gone, "restored", "nightly-build", repo("https://github.com/acme/app", "ghp_old1"),
		repo("https://github.com/acme/lib", ""), repo("https://github.com/acme/docs", "ghp_old2"))
	fresh := create(current, "fresh", "daily-digest", repo("https://github.com/acme/ops", "ghp_new"))
	require.NoError(t, st.Close())
	stable := func(s string) string {
		for id, l := range labels {
			s = strings.ReplaceAll(s, id, l)
		}
		return s
	}

	res := runCLI(t, cronNow, nil, nil, "keys", "forget-unopenable", "--data-dir", dataDir, "--dry-run")
	require.NoError(t, res.err)
	assertGolden(t, "dry_run", stable(res.stdout))
	st, err = store.Open(dbPath, store.Options{})
	require.NoError(t, err)
	_, err = crypto.StartupKeyring(identityPath, false, mustSealed(t, st), slog.New(slog.DiscardHandler))
	require.Error(t, err, "a dry run changes nothing")
	require.NoError(t, st.Close())

	res = runCLI(t, cronNow, nil, nil, "keys", "forget-unopenable", "--data-dir", dataDir)
	require.NoError(t, res.err)
	assertGolden(t, "forget", stable(res.stdout))

	st, err = store.Open(dbPath, store.Options{})
	require.NoError(t, err)
	_, err = crypto.StartupKeyring(identityPath, false, mustSealed(t, st), slog.New(slog.DiscardHandler))
	require.NoError(t, err, "the daemon starts again")
	svc := deployments.NewService(deployments.Config{Store: st, Backend: sessionstest.New(map[string]int64{"agent_a": 1}), Sealer: current})
	d, err := svc.Get(t.Context(), restored)
	require.NoError(t, err)
	require.Len(t, d.Resources, 3, "the resources stay")
	for _, r := range d.Resources {
		assert.Empty(t, r.SealedToken)
	}
	d, err = svc.Get(t.Context(), fresh)
	require.NoError(t, err)
	assert.NotEmpty(t, d.Resources[0].SealedToken, "an openable token stays")
	require.NoError(t, st.Close())

	res = runCLI(t, cronNow, nil, nil, "keys", "forget-unopenable", "--data-dir", dataDir)
	require.NoError(t, res.err)
	assert.Equal(t, "Every stored token opens with the identity; nothing to forget.\n", res.stdout)
}

// A retired identity the operator kept opens the old tokens: nothing is
// dropped when it is named.
func TestKeysForgetUnopenableKeepsWhatARetiredIdentityOpens(t *testing.T) {
	dataDir := t.TempDir()
	st, err := store.Open(filepath.Join(dataDir, store.FileName), store.Options{})
	require.NoError(t, err)
	retiredPath := filepath.Join(t.TempDir(), "retired.age.txt")
	retired, _, err := crypto.LoadOrCreateKeyring(retiredPath, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	_, _, err = crypto.LoadOrCreateKeyring(filepath.Join(dataDir, "keys", "identity.age.txt"), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	svc := deployments.NewService(deployments.Config{Store: st, Backend: sessionstest.New(map[string]int64{"agent_a": 1}), Sealer: retired})
	body, _ := json.Marshal(map[string]any{"name": "n", "agent": map[string]any{"id": "agent_a", "version": 1},
		"environment_id": "env_1", "initial_events": []any{userMessage("go")},
		"resources": []any{map[string]any{"type": "github_repository", "url": "https://github.com/a/b", "authorization_token": "ghp_x"}}})
	in, err := deployments.DecodeCreate(body)
	require.NoError(t, err)
	_, err = svc.Create(t.Context(), in)
	require.NoError(t, err)
	require.NoError(t, st.Close())

	res := runCLI(t, cronNow, nil, nil, "keys", "forget-unopenable", "--data-dir", dataDir, "--also-identity", retiredPath)
	require.NoError(t, res.err)
	assert.Contains(t, res.stdout, "nothing to forget")
	res = runCLI(t, cronNow, nil, nil, "keys", "forget-unopenable")
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), "--data-dir")
}

func mustSealed(t *testing.T, st *store.Store) iter.Seq2[crypto.Owner, []byte] {
	t.Helper()
	sealed, err := deployments.SealedSecrets(st)
	require.NoError(t, err)
	return sealed
}
