package daemon_test

import (
	"bufio"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
)

// An open event stream must not hold a graceful shutdown for its whole
// timeout: shutdown ends streams, drains the rest, and exits.
func TestShutdownEndsOpenEventStreams(t *testing.T) {
	dir := t.TempDir()
	harness := filepath.Join(dir, "harness.sh")
	require.NoError(t, os.WriteFile(harness, []byte("#!/bin/sh\necho started\nexec sleep 600\n"), 0o755))
	cfg := baseConfig(dir)
	cfg.Backend = "local"
	// Running harnesses share the shutdown budget (SIGTERM comes at its end,
	// here after 5s), so the stream must end well before that.
	cfg.ShutdownTimeout = 6 * time.Second
	cfg.Local = daemon.LocalConfig{
		Agents:                []daemon.LocalAgent{{ID: "agent_a", Version: 1, Command: []string{harness}}},
		Environments:          []daemon.LocalEnvironment{{ID: "env_1", Timeout: 10 * time.Minute}},
		MaxConcurrentSessions: 2, KillGracePeriod: time.Second, GitBinary: "git",
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

	req, err := http.NewRequest("GET", "http://s/v1/sessions/"+sessionID+"/events/stream", nil)
	require.NoError(t, err)
	req.Header.Set("anthropic-beta", "managed-agents-2026-04-01")
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

	streamEnded := make(chan struct{})
	go func() {
		for lines.Scan() { // drain until the daemon ends the stream
		}
		close(streamEnded)
	}()
	stopped := make(chan struct{})
	go func() { r.stop(t); close(stopped) }()
	select {
	case <-streamEnded:
	case <-time.After(3 * time.Second): // well before the harness is stopped 5s into the shutdown
		t.Fatal("shutdown did not end the open event stream as it began")
	}
	<-stopped
}
