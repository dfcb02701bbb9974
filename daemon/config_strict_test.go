package daemon_test

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(file, []byte(body), 0o600))
	return file
}

func TestUnknownConfigKeysFailNamingKeyAndFile(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, yaml, key, suggestion string
	}{
		{"typo in a section", "data_dir: /tmp/x\nshedule:\n  workers: 4\n", "shedule.workers", "schedule.workers"},
		{"typo in a leaf", "schedule:\n  wokers: 4\n", "schedule.wokers", "schedule.workers"},
		{"typo in a list item", "local:\n  agents:\n    - id: agent_a\n      comand: [/bin/true]\n",
			"local.agents[0].comand", "local.agents[0].command"},
		{"nothing near", "frobnicate: true\n", "frobnicate", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := writeConfig(t, tc.yaml)
			_, err := daemon.LoadConfig(newViperWithFlags(t), file)
			var ce *daemon.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.key, ce.Key)
			assert.Equal(t, file, ce.File)
			assert.Contains(t, err.Error(), file)
			assert.Contains(t, err.Error(), tc.key+": unknown key")
			if tc.suggestion != "" {
				assert.Contains(t, err.Error(), "did you mean "+tc.suggestion+"?")
			} else {
				assert.NotContains(t, err.Error(), "did you mean")
			}
		})
	}
}

func TestKnownConfigKeysStillLoad(t *testing.T) {
	t.Parallel()
	// Keys match case-insensitively, as viper always has; maps take any key.
	file := writeConfig(t, "Schedule:\n  Workers: 8\nlocal:\n  agents:\n    - id: agent_a\n      command: [/bin/true]\n      env: {ANY_NAME: x}\n")
	cfg, err := daemon.LoadConfig(newViperWithFlags(t), file)
	require.NoError(t, err)
	assert.Equal(t, 8, cfg.Schedule.Workers)
}

func TestStrayEnvironmentVariablesWarn(t *testing.T) {
	t.Setenv("SANDBOX0D_SHEDULE_WORKERS", "4")
	t.Setenv("SANDBOX0D_ADDR", "http://localhost") // the CLI's own: silent
	t.Setenv("SANDBOX0D_API_KEY", "k")
	t.Setenv("SANDBOX0D_SCHEDULE_WORKERS", "8") // a key: silent
	cfg, err := daemon.LoadConfig(newViperWithFlags(t), writeConfig(t, "data_dir: /tmp/x\n"))
	require.NoError(t, err)
	require.Len(t, cfg.Warnings, 1)
	assert.Contains(t, cfg.Warnings[0], "SANDBOX0D_SHEDULE_WORKERS")
	assert.NotContains(t, cfg.Warnings[0], "SANDBOX0D_ADDR")
	assert.NotContains(t, cfg.Warnings[0], "SANDBOX0D_API_KEY,")
	assert.NotContains(t, cfg.Warnings[0], "SANDBOX0D_SCHEDULE_WORKERS,")
}

// Regression: viper lower-cased map keys, so an agent's env {MY_KEY: v}
// reached the harness as my_key=v and ANTHROPIC_API_KEY was lost. Through
// the real config loader, daemon, local backend and harness process.
func TestAgentEnvNamesKeepTheirCase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	harness := filepath.Join(dir, "harness.sh")
	require.NoError(t, os.WriteFile(harness, []byte(
		"#!/bin/sh\necho \"env MY_KEY=${MY_KEY:-unset} my_key=${my_key:-unset} ANTHROPIC_API_KEY=${ANTHROPIC_API_KEY:-unset} MixedCase=${MixedCase:-unset}\"\n"), 0o755))
	file := writeConfig(t, fmt.Sprintf(`data_dir: %s
socket: %s
backend: local
local:
  sandbox: none
  agents:
    - id: agent_env
      version: 1
      command: [%s]
      env:
        MY_KEY: agent-value
        ANTHROPIC_API_KEY: sk-test
  environments:
    - id: env_1
      env:
        MixedCase: env-value
`, filepath.Join(dir, "data"), filepath.Join(dir, "d.sock"), harness))
	cfg, err := daemon.LoadConfig(newViperWithFlags(t), file)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"MY_KEY": "agent-value", "ANTHROPIC_API_KEY": "sk-test"}, cfg.Local.Agents[0].Env)

	start(t, cfg, daemon.Options{})
	sock := socketClient(cfg.Socket)
	status, d := do(t, sock, "POST", "http://s/v1/deployments", "", map[string]any{
		"name": "env", "agent": "agent_env", "environment_id": "env_1",
		"initial_events": []any{map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": "hi"}}}},
	})
	require.Equal(t, 200, status, "%v", d)
	status, run := do(t, sock, "POST", "http://s/v1/deployments/"+d["id"].(string)+"/run", "", nil)
	require.Equal(t, 200, status, "%v", run)
	sessionID, _ := run["session_id"].(string)
	require.NotEmpty(t, sessionID, "%v", run)

	req, err := http.NewRequest("GET", "http://s/v1/sessions/"+sessionID+"/events/stream", nil)
	require.NoError(t, err)
	req.Header.Set("anthropic-beta", "managed-agents-2026-04-01")
	req.Header.Set("Last-Event-ID", "0") // from the first event: the stream is a live tail otherwise
	resp, err := sock.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	got := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(resp.Body)
		for lines.Scan() {
			if strings.HasPrefix(lines.Text(), "data:") && strings.Contains(lines.Text(), "env MY_KEY") {
				got <- lines.Text()
				return
			}
		}
		close(got)
	}()
	select {
	case line := <-got:
		assert.Contains(t, line, "MY_KEY=agent-value my_key=unset ANTHROPIC_API_KEY=sk-test MixedCase=env-value")
	case <-time.After(time.Minute):
		t.Fatal("the harness output never arrived")
	}
}

func TestShippedExampleConfigIsStrictClean(t *testing.T) {
	t.Parallel()
	_, err := daemon.LoadConfig(newViperWithFlags(t), filepath.Join("..", "examples", "local.yaml"))
	require.NoError(t, err)
}

// local.claude_env keeps its names' case too (ANTHROPIC_BASE_URL, not
// anthropic_base_url), and claude_binary resolves like git_binary.
func TestClaudeEnvNamesKeepTheirCase(t *testing.T) {
	file := writeConfig(t, `data_dir: /tmp/x
local:
  claude_binary: ./bin/claude
  claude_env:
    ANTHROPIC_BASE_URL: https://gateway.example.com
`)
	cfg, err := daemon.LoadConfig(newViperWithFlags(t), file)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"ANTHROPIC_BASE_URL": "https://gateway.example.com"}, cfg.Local.ClaudeEnv)
	assert.Equal(t, filepath.Join(filepath.Dir(file), "bin", "claude"), cfg.Local.ClaudeBinary)
}
