package daemon_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
)

// Every key of the config structs has a one-line meaning in
// daemon/config_doc.go; a new key without one fails here (and in go generate).
func TestEveryKeyHasMeaning(t *testing.T) {
	t.Parallel()
	assert.Empty(t, daemon.MissingMeanings(), "add these keys to keyDocs in daemon/config_doc.go")
	refs, err := daemon.ConfigReference()
	require.NoError(t, err)
	byKey := map[string]daemon.KeyRef{}
	for _, r := range refs {
		byKey[r.Key] = r
	}
	// Spot checks of what the page promises: type, default, env and flag.
	assert.Equal(t, daemon.KeyRef{Key: "schedule.misfire_grace", Type: "duration", Default: "`1m`",
		Env: "SANDBOX0D_SCHEDULE_MISFIRE_GRACE", Meaning: byKey["schedule.misfire_grace"].Meaning}, byKey["schedule.misfire_grace"])
	assert.Equal(t, "--log-level", byKey["log.level"].Flag)
	assert.Equal(t, "", byKey["local.agents[].id"].Env, "list items cannot be set from the environment")
	assert.Contains(t, byKey["auth.api_keys"].Env, "SANDBOX0D_API_KEYS")
	assert.Equal(t, "`[5s, 5m, 30m, 2h, 5h, 10h, 10h]`", byKey["webhooks.retry_schedule"].Default)
}

// `sandbox0d config defaults` output loads back, and gives the defaults.
func TestDefaultsYAMLLoadsBackAsTheDefaults(t *testing.T) {
	out, err := daemon.DefaultsYAML()
	require.NoError(t, err)
	for _, k := range []string{"  misfire_grace: 1m\n", "  # a fire missed while down runs at startup if younger; `0` disables\n", "  retry_schedule: [5s, 5m, 30m, 2h, 5h, 10h, 10h]\n"} {
		assert.Contains(t, out, k)
	}
	file := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(file, []byte(out), 0o600))
	loaded, err := daemon.LoadConfig(newViperWithFlags(t), file)
	require.NoError(t, err, "the defaults YAML must load:\n%s", out)
	empty := filepath.Join(t.TempDir(), "empty.yaml")
	require.NoError(t, os.WriteFile(empty, []byte("{}\n"), 0o600))
	plain, err := daemon.LoadConfig(newViperWithFlags(t), empty)
	require.NoError(t, err)
	// Relative defaults (non-root) resolve next to each file; compare the rest.
	for _, c := range []*daemon.Config{&loaded, &plain} {
		c.ConfigFile, c.DataDir, c.Socket = "", "", ""
		// An empty list in the file is an empty slice, an absent one nil:
		// the same configuration.
		if len(c.Local.Agents) == 0 && len(c.Local.Environments) == 0 && len(c.Local.Vaults) == 0 {
			c.Local.Agents, c.Local.Environments, c.Local.Vaults = nil, nil, nil
		}
	}
	assert.Equal(t, plain, loaded)
	assert.NotContains(t, out, "[redacted]")
}

// A misspelt SANDBOX0D_ variable gets the nearest real one, as a misspelt
// file key gets the nearest key.
func TestMisspeltEnvironmentVariableSuggestsTheKey(t *testing.T) {
	t.Setenv("SANDBOX0D_SCHEDULE_WOKERS", "4")
	t.Setenv("SANDBOX0D_API_KYE", "k")
	t.Setenv("SANDBOX0D_FROBNICATE_EVERYTHING_NOW", "1")
	cfg, err := daemon.LoadConfig(newViperWithFlags(t), writeConfig(t, "data_dir: /tmp/x\n"))
	require.NoError(t, err)
	require.Len(t, cfg.Warnings, 1)
	w := cfg.Warnings[0]
	assert.Contains(t, w, "SANDBOX0D_SCHEDULE_WOKERS (did you mean SANDBOX0D_SCHEDULE_WORKERS?)")
	assert.Contains(t, w, "SANDBOX0D_API_KYE (did you mean SANDBOX0D_API_KEY?)")
	assert.Contains(t, w, "SANDBOX0D_FROBNICATE_EVERYTHING_NOW,")
	assert.False(t, strings.Contains(w, "SANDBOX0D_FROBNICATE_EVERYTHING_NOW (did"), w)
}
