package daemon_test

import (
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// With no bwrap on PATH, local.sandbox: bubblewrap and auto both refuse to
// start, name the Debian package and the way out; auto never degrades to
// none on its own.
func TestStartupRefusesBubblewrapAndAutoWithoutBwrap(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, mode := range []string{"bubblewrap", "auto"} {
		_, err := daemon.New(localConfig(t, mode), slog.New(slog.NewTextHandler(io.Discard, nil)), daemon.Options{})
		require.Error(t, err, mode)
		assert.Contains(t, err.Error(), "config local.sandbox is "+mode+" but bubblewrap cannot confine harnesses")
		assert.Contains(t, err.Error(), "the Debian package bubblewrap is missing")
		assert.Contains(t, err.Error(), "set local.sandbox: none to run harnesses unconfined knowingly")
	}
}

// With a bwrap that cannot create namespaces (the old unit's
// RestrictNamespaces=), auto refuses and quotes it.
func TestStartupAutoRefusesBrokenBwrap(t *testing.T) {
	dir := t.TempDir()
	said := "bwrap: No permissions to create new namespace, likely because the kernel does not allow non-privileged user namespaces."
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bwrap"), []byte("#!/bin/sh\necho '"+said+"' >&2\nexit 1\n"), 0o755))
	t.Setenv("PATH", dir+":/usr/bin:/bin")
	_, err := daemon.New(localConfig(t, "auto"), slog.New(slog.NewTextHandler(io.Discard, nil)), daemon.Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), strconv.Quote(said))
	assert.Contains(t, err.Error(), "RestrictNamespaces=")
	assert.Contains(t, err.Error(), "local.sandbox: none")
}

// The sandbox in force shows in /readyz and in sandbox0d_sandbox_mode:
// bubblewrap when auto finds a working bwrap, none (unconfined) when the
// config says none.
func TestSandboxModeInReadyzAndMetrics(t *testing.T) {
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("bwrap is not installed (Debian package bubblewrap)")
	}
	for mode, want := range map[string][2]string{
		"auto": {"bubblewrap", `sandbox0d_sandbox_mode{mode="bubblewrap"} 1`},
		"none": {"none (unconfined)", `sandbox0d_sandbox_mode{mode="none"} 1`},
	} {
		cfg := localConfig(t, mode)
		r := start(t, cfg, daemon.Options{})
		status, ready := do(t, socketClient(cfg.Socket), "GET", "http://s/readyz", "", nil)
		require.Equal(t, 200, status, "%v", ready)
		assert.Equal(t, want[0], ready["checks"].(map[string]any)["sandbox"], mode)
		resp, err := socketClient(cfg.Socket).Get("http://s/metrics")
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Contains(t, string(body), want[1], mode)
		other := `sandbox0d_sandbox_mode{mode="none"} 0`
		if mode == "none" {
			other = `sandbox0d_sandbox_mode{mode="bubblewrap"} 0`
		}
		assert.Contains(t, string(body), other, mode)
		r.stop(t)
	}
	// A backend that runs no local process has no sandbox to report.
	cfg := baseConfig(t.TempDir())
	start(t, cfg, daemon.Options{})
	_, ready := do(t, socketClient(cfg.Socket), "GET", "http://s/readyz", "", nil)
	assert.NotContains(t, ready["checks"], "sandbox")
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
