package daemon_test

import (
	"bufio"
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

// An open event stream must not hold a graceful shutdown for its whole
// timeout: shutdown ends streams, drains the rest, and exits. Held, the
// stream would end only when the harness does, which is after the backend
// sends it SIGTERM at the end of the budget; so the stream must end before
// the harness has been signalled (it leaves a mark in its workspace when it is).
func TestShutdownEndsOpenEventStreams(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	harness := filepath.Join(dir, "harness.sh")
	require.NoError(t, os.WriteFile(harness, []byte("#!/bin/sh\ntrap 'touch signalled; exit 0' TERM\necho started\nwhile :; do sleep 0.05; done\n"), 0o755))
	cfg := baseConfig(dir)
	cfg.Backend = "local"
	// Running harnesses share the shutdown budget: SIGTERM comes at its
	// end, here 1.5s into the shutdown (the budget less the kill grace).
	cfg.ShutdownTimeout = 2 * time.Second
	cfg.Local = daemon.LocalConfig{
		Agents:                []daemon.LocalAgent{{ID: "agent_a", Version: 1, Command: []string{harness}}},
		Environments:          []daemon.LocalEnvironment{{ID: "env_1", Timeout: 10 * time.Minute}},
		MaxConcurrentSessions: 2, KillGracePeriod: 500 * time.Millisecond, GitBinary: "git",
	}
	r := start(t, cfg, daemon.Options{})
	sock := socketClient(cfg.Socket)
	status, d := do(t, sock, "POST", "http://s/v1/deployments", "", map[string]any{
		"name": "stream", "agent": "agent_a", "environment_id": "env_1",
		"initial_events": []any{map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": "hi"}}}},
	})
	require.Equal(t, 200, status, "%v", d)
	status, run := do(t, sock, "POST", "http://s/v1/deployments/"+d["id"].(string)+"/run", "", nil)
	require.Equal(t, 200, status, "%v", run)
	sessionID, _ := run["session_id"].(string)
	require.NotEmpty(t, sessionID, "%v", run)
	signalled := filepath.Join(cfg.DataDir, "workspaces", sessionID, "signalled") // the harness runs in its workspace

	req, err := http.NewRequest("GET", "http://s/v1/sessions/"+sessionID+"/events/stream", nil)
	require.NoError(t, err)
	req.Header.Set("anthropic-beta", "managed-agents-2026-04-01")
	req.Header.Set("Last-Event-ID", "0") // from the first event: the stream is a live tail otherwise
	req.Header.Set("Accept", "text/event-stream")
	resp, err := sock.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() { // follow the stream until the harness is running
		if strings.HasPrefix(lines.Text(), "data:") && strings.Contains(lines.Text(), "started") {
			break
		}
	}

	stopped := make(chan struct{})
	go func() { r.stop(t); close(stopped) }()
	for lines.Scan() { // drain until the daemon ends the stream
	}
	_, err = os.Stat(signalled)
	assert.ErrorIs(t, err, os.ErrNotExist, "the stream ended only after the harness was stopped: shutdown held it")
	<-stopped
	_, err = os.Stat(signalled)
	assert.NoError(t, err, "the harness was stopped by the shutdown")
}
