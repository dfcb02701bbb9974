package local

import (
	"errors"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func validConfig() Config {
	return Config{
		WorkspaceDir: "/var/lib/sandbox0d/workspaces",
		Agents: []Agent{
			{ID: "agent_claude", Version: 1, Command: []string{"claude", "-p"}},
			{ID: "agent_claude", Version: 2, Command: []string{"claude", "-p", "--verbose"}},
			{ID: "my-script", Command: []string{"/usr/local/bin/run.sh"}},
		},
		Environments: []Environment{{ID: "env_default"}, {ID: "env_big", Timeout: time.Hour, MaxOutputBytes: 1 << 30}},
		Vaults:       []Vault{{ID: "vlt_gh", File: "/etc/sandbox0d/gh.env"}, {ID: "vlt_api", Credential: "anthropic"}},
	}
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, validConfig().Validate())

	tests := []struct {
		name    string
		mutate  func(*Config)
		wantKey string
	}{
		{"no workspace dir", func(c *Config) { c.WorkspaceDir = " " }, "local.workspace_dir"},
		{"negative concurrency", func(c *Config) { c.MaxConcurrentSessions = -1 }, "local.max_concurrent_sessions"},
		{"negative retention", func(c *Config) { c.WorkspaceRetention = -time.Hour }, "local.workspace_retention"},
		{"agent without id", func(c *Config) { c.Agents[0].ID = "" }, "local.agents[0].id"},
		{"agent id with a slash", func(c *Config) { c.Agents[2].ID = "a/b" }, "local.agents[2].id"},
		{"agent without command", func(c *Config) { c.Agents[1].Command = nil }, "local.agents[1].command"},
		{"agent with empty program", func(c *Config) { c.Agents[1].Command = []string{""} }, "local.agents[1].command"},
		{"duplicate agent version", func(c *Config) { c.Agents[1].Version = 1 }, "local.agents[1]"},
		{"bad agent env name", func(c *Config) { c.Agents[0].Env = map[string]string{"A=B": "x"} }, "local.agents[0].env"},
		{"negative agent version", func(c *Config) { c.Agents[0].Version = -2 }, "local.agents[0].version"},
		{"duplicate environment", func(c *Config) { c.Environments[1].ID = "env_default" }, "local.environments[1].id"},
		{"negative timeout", func(c *Config) { c.Environments[0].Timeout = -time.Second }, "local.environments[0].timeout"},
		{"negative output cap", func(c *Config) { c.Environments[1].MaxOutputBytes = -1 }, "local.environments[1].max_output_bytes"},
		{"vault with neither", func(c *Config) { c.Vaults[0].File = "" }, "local.vaults[0]"},
		{"vault with both", func(c *Config) { c.Vaults[1].File = "/x" }, "local.vaults[1]"},
		{"credential path", func(c *Config) { c.Vaults[1].Credential = "../etc/shadow" }, "local.vaults[1].credential"},
		{"duplicate vault", func(c *Config) { c.Vaults[1].ID = "vlt_gh" }, "local.vaults[1].id"},
		{"vault host with a scheme", func(c *Config) { c.Vaults[0].Hosts = []string{"api.example.com", "https://x.com/"} }, "local.vaults[0].hosts[1]"},
		{"vault host with a port", func(c *Config) { c.Vaults[0].Hosts = []string{"x.com:443"} }, "local.vaults[0].hosts[0]"},
		{"vault inner wildcard", func(c *Config) { c.Vaults[0].Hosts = []string{"a.*.com"} }, "local.vaults[0].hosts[0]"},
		{"vault inject", func(c *Config) { c.Vaults[1].Inject = []string{"header", "query"} }, "local.vaults[1].inject[1]"},
		{"unknown networking type", func(c *Config) { c.Environments[0].Networking.Type = "open" }, "local.environments[0].networking.type"},
		{"package managers on unrestricted", func(c *Config) { c.Environments[0].Networking.AllowPackageManagers = true }, "local.environments[0].networking"},
		{"bad allowed host on unrestricted", func(c *Config) { c.Environments[0].Networking.AllowedHosts = []string{"10.0.0.7", "a b"} },
			"local.environments[0].networking.allowed_hosts[1]"},
		{"bad allowed host", func(c *Config) {
			c.Environments[1].Networking = Networking{Type: NetworkingLimited, AllowedHosts: []string{"ok.example.com", "http://x.com/"}}
		}, "local.environments[1].networking.allowed_hosts[1]"},
		{"negative memory", func(c *Config) { c.Environments[1].Limits.Memory = -1 }, "local.environments[1].limits.memory"},
		{"tiny memory", func(c *Config) { c.Environments[1].Limits.Memory = 1 << 20 }, "local.environments[1].limits.memory"},
		{"few processes", func(c *Config) { c.Environments[0].Limits.Processes = 15 }, "local.environments[0].limits.processes"},
		{"negative cpu", func(c *Config) { c.Environments[0].Limits.CPU = -0.5 }, "local.environments[0].limits.cpu"},
		{"NaN cpu", func(c *Config) { c.Environments[0].Limits.CPU = math.NaN() }, "local.environments[0].limits.cpu"},
		{"tiny cpu", func(c *Config) { c.Environments[0].Limits.CPU = 0.001 }, "local.environments[0].limits.cpu"},
		{"few open files", func(c *Config) { c.Environments[1].Limits.OpenFiles = 63 }, "local.environments[1].limits.open_files"},
		{"bad allowed port", func(c *Config) {
			c.Environments[1].Networking = Networking{Type: NetworkingLimited, AllowedHosts: []string{"x.com:99999"}}
		}, "local.environments[1].networking.allowed_hosts[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.mutate(&cfg)
			err := cfg.Validate()
			require.Error(t, err)
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "%v", err)
			assert.Equal(t, tt.wantKey, ce.Key, "%v", err)
		})
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	cfg := validConfig()
	cfg.WorkspaceDir = ""
	cfg.Agents[0].Command = nil
	err := cfg.Validate()
	assert.ErrorContains(t, err, "local.workspace_dir: is required")
	assert.ErrorContains(t, err, "local.agents[0].command")
}

func TestConfigDefaults(t *testing.T) {
	t.Setenv("CREDENTIALS_DIRECTORY", "/run/credentials/sandbox0d.service")
	cfg := validConfig().withDefaults()
	assert.Equal(t, 4, cfg.MaxConcurrentSessions)
	assert.Equal(t, 7*24*time.Hour, cfg.WorkspaceRetention)
	assert.Equal(t, "git", cfg.GitBinary)
	assert.Equal(t, "/run/credentials/sandbox0d.service", cfg.CredentialsDir)
	assert.Equal(t, int64(1), cfg.Agents[2].Version)
	assert.Equal(t, 30*time.Minute, cfg.Environments[0].Timeout)
	assert.Equal(t, int64(10<<20), cfg.Environments[0].MaxOutputBytes)
	assert.Equal(t, time.Hour, cfg.Environments[1].Timeout)
	assert.Equal(t, Limits{Memory: DefaultMemoryLimit(4), Processes: 512, CPU: float64(runtime.NumCPU()), OpenFiles: 4096,
		WorkspaceBytes: DefaultWorkspaceBytes}, cfg.Environments[0].Limits)
	assert.NotNil(t, cfg.Now)
	assert.NotNil(t, cfg.Logger)
}

func TestLimitsAtTheirFloorsAreValid(t *testing.T) {
	cfg := validConfig()
	cfg.Environments[0].Limits = Limits{Memory: 32 << 20, Processes: 16, CPU: 0.01, OpenFiles: 64}
	require.NoError(t, cfg.Validate())
}

// The memory default shares the machine among the concurrent turns and one
// share more for the daemon and the system, at most 4 GiB.
func TestDefaultMemoryLimit(t *testing.T) {
	total := sandbox.HostMemory()
	if total <= 0 {
		assert.Equal(t, int64(MaxDefaultMemoryLimit), DefaultMemoryLimit(4))
		return
	}
	for _, n := range []int{1, 4, 64} {
		got := DefaultMemoryLimit(n)
		assert.Equal(t, max(minMemoryLimit, min(int64(MaxDefaultMemoryLimit), total/int64(n+1))), got, n)
		assert.LessOrEqual(t, got*int64(n+1), max(total, int64(minMemoryLimit*(n+1))), "%d turns at their limit leave a share free", n)
	}
}
