package daemon_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
)

func localConfig(t *testing.T, sandboxMode string) daemon.Config {
	cfg := baseConfig(t.TempDir())
	cfg.Backend = "local"
	cfg.Local.Sandbox = sandboxMode
	return cfg
}

// With no bwrap on PATH, local.sandbox: bubblewrap refuses to start and
// names the Debian package to install.
func TestStartupRefusesRequiredBubblewrapWithoutBwrap(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := daemon.New(localConfig(t, "bubblewrap"), slog.New(slog.NewTextHandler(io.Discard, nil)), daemon.Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "local.sandbox")
	assert.Contains(t, err.Error(), `Debian package "bubblewrap"`)
}

// local.sandbox: auto without bwrap starts unconfined and says so.
func TestStartupAutoWithoutBwrapWarns(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	r := start(t, localConfig(t, "auto"), daemon.Options{})
	logs := r.logs.String()
	assert.Contains(t, logs, "level=WARN")
	assert.Contains(t, logs, "local.sandbox is auto and bubblewrap does not work here")
	assert.Contains(t, logs, "install the bubblewrap package")
}

func TestStartupRejectsUnknownSandbox(t *testing.T) {
	t.Parallel()
	_, err := daemon.New(localConfig(t, "docker"), slog.New(slog.NewTextHandler(io.Discard, nil)), daemon.Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "local.sandbox: must be bubblewrap, none or auto")
}

func TestNetworkingConfigLoads(t *testing.T) {
	t.Parallel()
	file := writeConfig(t, `backend: local
local:
  sandbox: none
  environments:
    - id: env_lim
      networking:
        type: limited
        allowed_hosts: ["api.example.com:443", "*.example.org", "10.0.0.7"]
        allow_package_managers: true
        allow_mcp_servers: false
`)
	cfg, err := daemon.LoadConfig(newViperWithFlags(t), file)
	require.NoError(t, err)
	assert.Equal(t, "none", cfg.Local.Sandbox)
	require.Len(t, cfg.Local.Environments, 1)
	n := cfg.Local.Environments[0].Networking
	assert.Equal(t, "limited", n.Type)
	assert.Equal(t, []string{"api.example.com:443", "*.example.org", "10.0.0.7"}, n.AllowedHosts)
	assert.True(t, n.AllowPackageManagers)
}

// A bad allowed_hosts entry stops the start naming its key.
func TestStartupRejectsBadAllowedHost(t *testing.T) {
	t.Parallel()
	cfg := localConfig(t, "none")
	cfg.Local.Environments = []daemon.LocalEnvironment{{ID: "env_lim",
		Networking: daemon.LocalNetworking{Type: "limited", AllowedHosts: []string{"https://api.example.com/"}}}}
	_, err := daemon.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), daemon.Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "local.environments[0].networking.allowed_hosts[0]")
}
