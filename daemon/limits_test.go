package daemon_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
)

func TestEnvironmentLimitsLoad(t *testing.T) {
	t.Parallel()
	file := writeConfig(t, `backend: local
local:
  environments:
    - id: env_small
      limits: {memory: 512MiB, processes: 64, cpu: 1.5, open_files: 1024}
    - id: env_bytes
      limits:
        memory: 536870912
    - id: env_default
`)
	cfg, err := daemon.LoadConfig(newViperWithFlags(t), file)
	require.NoError(t, err)
	require.Len(t, cfg.Local.Environments, 3)
	assert.Equal(t, daemon.LocalLimits{Memory: "512MiB", Processes: 64, CPU: 1.5, OpenFiles: 1024}, cfg.Local.Environments[0].Limits)
	assert.Equal(t, "536870912", cfg.Local.Environments[1].Limits.Memory)
	assert.Zero(t, cfg.Local.Environments[2].Limits)
}

// A bad limit stops the start naming its key path, whether the file's
// decoding, the daemon or the local backend finds it.
func TestBadEnvironmentLimitsNameTheKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ yaml, want string }{
		{"memory: 2 gigs", `local.environments[1].limits.memory: "2 gigs" has an unknown unit "gigs"`},
		{"memory: lots", `local.environments[1].limits.memory: "lots" is not a size`},
		{"memroy: 1G", "local.environments[1].limits.memroy: unknown key; did you mean local.environments[1].limits.memory?"},
	} {
		file := writeConfig(t, "backend: local\nlocal:\n  environments:\n    - id: env_a\n    - id: env_b\n      limits: {"+tc.yaml+"}\n")
		_, err := daemon.LoadConfig(newViperWithFlags(t), file)
		require.Error(t, err, tc.yaml)
		assert.Contains(t, err.Error(), tc.want)
	}

	for _, tc := range []struct {
		limits daemon.LocalLimits
		want   string
	}{
		{daemon.LocalLimits{Memory: "1MiB"}, "local.environments[0].limits.memory: must be at least 32 MiB"},
		{daemon.LocalLimits{Processes: 4}, "local.environments[0].limits.processes: must be at least 16"},
		{daemon.LocalLimits{Processes: -1}, "local.environments[0].limits.processes: must not be negative"},
		{daemon.LocalLimits{CPU: -2}, "local.environments[0].limits.cpu: must be a positive number of cores"},
		{daemon.LocalLimits{CPU: 0.001}, "local.environments[0].limits.cpu: must be at least 0.01 cores"},
		{daemon.LocalLimits{OpenFiles: 10}, "local.environments[0].limits.open_files: must be at least 64"},
	} {
		cfg := localConfig(t, "none")
		cfg.Local.Environments = []daemon.LocalEnvironment{{ID: "env_a", Limits: tc.limits}}
		_, err := daemon.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), daemon.Options{})
		require.Error(t, err, "%+v", tc.limits)
		assert.Contains(t, err.Error(), tc.want)
	}
}

// The daemon says at startup, and in /readyz, how the host enforces the
// sessions' limits.
func TestStartupReportsSessionLimits(t *testing.T) {
	t.Parallel()
	cfg := localConfig(t, "none")
	r := start(t, cfg, daemon.Options{})
	e := sandbox.LimitsEnforcement()
	if len(e.Missing()) == 0 {
		assert.Contains(t, r.logs.String(), "local sessions' limits enforced")
	} else {
		assert.Contains(t, r.logs.String(), "level=WARN msg=\"local sessions' limits NOT ENFORCED")
	}
	status, ready := do(t, socketClient(cfg.Socket), "GET", "http://s/readyz", "", nil)
	require.Equal(t, 200, status, "%v", ready)
	limits, ok := ready["limits"].(map[string]any)
	require.True(t, ok, "%v", ready)
	for name, how := range map[string]string{"memory": e.Memory, "processes": e.Processes, "cpu": e.CPU, "open_files": e.OpenFiles} {
		if how == "" {
			how = "not enforced"
		}
		assert.Equal(t, how, limits[name], name)
	}
}
