package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/internal/fakeupstream"
)

var sessionIDPattern = regexp.MustCompile(`sesn_[0-9A-Za-z]+`)

// The sessions commands against a real daemon with the local backend:
// deployments run --follow prints the harness's events and returns when the
// session goes idle; then list, get, events, archive, delete.
func TestSessionsCommandsOnLocalSessions(t *testing.T) {
	dir := t.TempDir()
	harness := filepath.Join(dir, "harness.sh")
	require.NoError(t, os.WriteFile(harness, []byte("#!/bin/sh\necho \"hello from the harness\"\necho \"second line\"\n"), 0o755))
	blocking := filepath.Join(dir, "blocking.sh")
	require.NoError(t, os.WriteFile(blocking, []byte("#!/bin/sh\necho started\nexec sleep 600\n"), 0o755))
	d := startRealDaemon(t, func(c *daemon.Config) {
		c.Backend = "local"
		c.Local = daemon.LocalConfig{
			Agents: []daemon.LocalAgent{
				{ID: "agent_echo", Version: 1, Command: []string{harness}},
				{ID: "agent_block", Version: 1, Command: []string{blocking}},
			},
			Environments:          []daemon.LocalEnvironment{{ID: "env_local", Timeout: 10 * time.Minute}},
			MaxConcurrentSessions: 2, KillGracePeriod: time.Second, GitBinary: "git",
		}
	})
	cli := func(args ...string) cliResult {
		return runCLI(t, time.Now, nil, nil, append([]string{"--socket", d.socket}, args...)...)
	}
	def := filepath.Join(dir, "d.yaml")
	require.NoError(t, os.WriteFile(def, []byte("name: echo\nagent: agent_echo\nenvironment_id: env_local\n"+
		"initial_events:\n  - type: user.message\n    content: [{type: text, text: Say hello}]\n"), 0o600))
	res := cli("--json", "deployments", "create", "-f", def)
	require.NoError(t, res.err)
	deploymentID := regexp.MustCompile(`depl_[0-9A-Za-z]+`).FindString(res.stdout)
	require.NotEmpty(t, deploymentID, res.stdout)

	res = cli("deployments", "run", deploymentID, "--follow")
	require.NoError(t, res.err, res.stderr)
	sessionID := sessionIDPattern.FindString(res.stdout)
	require.NotEmpty(t, sessionID, res.stdout)
	assert.Contains(t, res.stderr, "Following session "+sessionID)
	assert.Regexp(t, `(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  user\.message  Say hello$`, res.stdout)
	assert.Regexp(t, `(?m)  agent\.message  hello from the harness$`, res.stdout)
	assert.Regexp(t, `(?m)  session\.status_idle  \(end_turn\)\n\z`, res.stdout, "the follow ends at idle")
	assert.Equal(t, 1, strings.Count(res.stdout, "user.message  Say hello"), "history, then the live tail, each event once")
	assert.Equal(t, 1, strings.Count(res.stdout, "session.status_running"), res.stdout)

	res = cli("sessions", "list", "--deployment", deploymentID)
	require.NoError(t, res.err)
	assert.Contains(t, res.stdout, sessionID)
	assert.Regexp(t, sessionID+`\s+idle\s+agent_echo v1\s+`+deploymentID, res.stdout)
	res = cli("sessions", "list", "--status", "running")
	require.NoError(t, res.err)
	assert.NotContains(t, res.stdout, sessionID)

	res = cli("sessions", "get", sessionID)
	require.NoError(t, res.err)
	assert.Contains(t, res.stdout, "Deployment:   "+deploymentID)

	res = cli("sessions", "events", sessionID)
	require.NoError(t, res.err)
	assert.Equal(t, 1, strings.Count(res.stdout, "hello from the harness"))

	res = cli("sessions", "archive", sessionID)
	require.NoError(t, res.err)
	assert.Contains(t, res.stdout, "idle (archived)")
	res = cli("sessions", "delete", sessionID)
	require.NoError(t, res.err)
	assert.Equal(t, "Deleted session "+sessionID+".\n", res.stdout)
	res = cli("sessions", "get", sessionID)
	require.Error(t, res.err)

	// interrupt ends a running session; a follower returns when it does.
	blockDef := filepath.Join(dir, "b.yaml")
	require.NoError(t, os.WriteFile(blockDef, []byte("name: block\nagent: agent_block\nenvironment_id: env_local\n"+
		"initial_events:\n  - type: user.message\n    content: [{type: text, text: Wait}]\n"), 0o600))
	res = cli("--json", "deployments", "create", "-f", blockDef)
	require.NoError(t, res.err)
	blockID := regexp.MustCompile(`depl_[0-9A-Za-z]+`).FindString(res.stdout)
	res = cli("--json", "deployments", "run", blockID)
	require.NoError(t, res.err)
	running := sessionIDPattern.FindString(res.stdout)
	followed := make(chan cliResult, 1)
	go func() { followed <- cli("sessions", "events", running, "-f") }()
	require.Eventually(t, func() bool {
		return strings.Contains(cli("sessions", "events", running).stdout, "started")
	}, 30*time.Second, 20*time.Millisecond)
	res = cli("sessions", "interrupt", running)
	require.NoError(t, res.err)
	assert.Equal(t, "Sent a user.interrupt to "+running+".\n", res.stdout)
	select {
	case res = <-followed:
		require.NoError(t, res.err)
		assert.Contains(t, res.stdout, "agent.message  started")
	case <-time.After(30 * time.Second):
		t.Fatal("sessions events -f did not return after the interrupt")
	}
}

// Upstream sessions are read through the daemon's proxy with the same
// commands: list, get, and a follow that sees events the upstream emits.
func TestSessionsCommandsThroughTheUpstreamProxy(t *testing.T) {
	fake := fakeupstream.New(t)
	fake.AddAgent("agent_a", 4)
	fake.AddEnvironment("env_1")
	d := startRealDaemon(t, func(c *daemon.Config) {
		c.Backend = "upstream"
		c.Upstream = daemon.UpstreamConfig{URL: fake.URL, APIKey: fake.APIKey(), RetryWindow: time.Second, MaxConcurrency: 2, RequestTimeout: 5 * time.Second}
	})
	cli := func(args ...string) cliResult {
		return runCLI(t, time.Now, nil, nil, append([]string{"--socket", d.socket}, args...)...)
	}
	def := filepath.Join(t.TempDir(), "d.yaml")
	require.NoError(t, os.WriteFile(def, []byte("name: up\nagent: agent_a\nenvironment_id: env_1\n"+
		"initial_events:\n  - type: user.message\n    content: [{type: text, text: Review it}]\n"), 0o600))
	res := cli("--json", "deployments", "create", "-f", def)
	require.NoError(t, res.err)
	deploymentID := regexp.MustCompile(`depl_[0-9A-Za-z]+`).FindString(res.stdout)
	res = cli("--json", "deployments", "run", deploymentID)
	require.NoError(t, res.err)
	sessionID := sessionIDPattern.FindString(res.stdout)
	require.NotEmpty(t, sessionID)

	res = cli("sessions", "list")
	require.NoError(t, res.err)
	assert.Regexp(t, sessionID+`\s+\S+\s+agent_a v4\s+`+deploymentID, res.stdout, "the deployment comes from the metadata")
	res = cli("sessions", "get", sessionID)
	require.NoError(t, res.err)
	assert.Contains(t, res.stdout, "Deployment:   "+deploymentID)

	followed := make(chan cliResult, 1)
	go func() { followed <- cli("sessions", "events", sessionID, "-f") }()
	require.NoError(t, fake.AwaitStreams(t.Context(), 1))
	_, err := fake.EmitEvent(sessionID, map[string]any{"type": "agent.message", "content": []any{map[string]any{"type": "text", "text": "Looks good"}}})
	require.NoError(t, err)
	_, err = fake.EmitEvent(sessionID, map[string]any{"type": "session.status_idle", "stop_reason": map[string]any{"type": "end_turn"}})
	require.NoError(t, err)
	select {
	case res = <-followed:
		require.NoError(t, res.err)
		assert.Contains(t, res.stdout, "user.message  Review it")
		assert.Contains(t, res.stdout, "agent.message  Looks good")
		assert.Regexp(t, `session\.status_idle  \(end_turn\)\n\z`, res.stdout)
	case <-time.After(30 * time.Second):
		t.Fatal("the follow did not end at session.status_idle")
	}
}
