package daemon_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
)

// egressFloodCommand turns the test binary into the hostile harness of
// issue 22: it opens connections to the egress socket of its limited
// sandbox, sends "CONNECT " on each and holds them.
const egressFloodCommand = "__egress-flood"

// egressSocketInside is where a limited sandbox finds the daemon's egress
// socket (sessions/local/sandbox).
const egressSocketInside = "/run/sandbox0d/egress.sock"

// egressFlood makes args[0] connection attempts, holding up to args[1] of
// them at once (its own open-file limit bounds that), prints what it did,
// and holds what it has until a file named release appears in its working
// directory (the workspace).
func egressFlood(args []string) int {
	attempts, _ := strconv.Atoi(args[0])
	hold, _ := strconv.Atoi(args[1])
	var held []net.Conn
	failed := 0
	for range attempts {
		if len(held) >= hold {
			held[0].Close()
			held = held[1:]
		}
		c, err := net.Dial("unix", egressSocketInside)
		if err != nil {
			failed++
			continue
		}
		_, _ = io.WriteString(c, "CONNECT ")
		held = append(held, c)
	}
	fmt.Printf("flooded: %d attempts, %d failed to connect, %d held\n", attempts, failed, len(held))
	for {
		if _, err := os.Stat("release"); err == nil {
			return 0
		}
		time.Sleep(20 * time.Millisecond) // the harness waiting for the test, not the test waiting
	}
}

func api(t *testing.T, r *running, method, path string, body any) (int, map[string]any) {
	t.Helper()
	return do(t, socketClient(r.socket), method, "http://sandbox0d"+path, "", body)
}

func newLocalSession(t *testing.T, r *running, agent, env string) string {
	t.Helper()
	status, out := api(t, r, http.MethodPost, "/v1/sessions", map[string]any{"agent": agent, "environment_id": env})
	require.Equal(t, http.StatusOK, status, "%v", out)
	return out["id"].(string)
}

func sendText(t *testing.T, r *running, id, text string) (int, map[string]any) {
	t.Helper()
	return api(t, r, http.MethodPost, "/v1/sessions/"+id+"/events", map[string]any{"events": []any{map[string]any{
		"type": "user.message", "content": []any{map[string]any{"type": "text", "text": text}}}}})
}

// awaitEvent follows a session's event stream from its start (Last-Event-ID
// 0: the stream is a live tail otherwise) until match
// says yes, and returns that event.
func awaitEvent(t *testing.T, r *running, id string, match func(anthropic.BetaManagedAgentsStreamSessionEventsUnion) bool) anthropic.BetaManagedAgentsStreamSessionEventsUnion {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := r.client()
	stream := c.Beta.Sessions.Events.StreamEvents(ctx, id, anthropic.BetaSessionEventStreamParams{}, option.WithHeader("Last-Event-ID", "0"))
	defer stream.Close()
	for stream.Next() {
		if ev := stream.Current(); match(ev) {
			return ev
		}
	}
	t.Fatalf("the stream of %s ended without the event: %v", id, stream.Err())
	return anthropic.BetaManagedAgentsStreamSessionEventsUnion{}
}

func messageSaying(prefix string) func(anthropic.BetaManagedAgentsStreamSessionEventsUnion) bool {
	return func(ev anthropic.BetaManagedAgentsStreamSessionEventsUnion) bool {
		if ev.Type != "agent.message" {
			return false
		}
		content := ev.AsAgentMessage().Content
		return len(content) > 0 && strings.HasPrefix(content[0].Text, prefix)
	}
}

func isType(typ string) func(anthropic.BetaManagedAgentsStreamSessionEventsUnion) bool {
	return func(ev anthropic.BetaManagedAgentsStreamSessionEventsUnion) bool { return ev.Type == typ }
}

func sessionStatus(t *testing.T, r *running, id string) string {
	t.Helper()
	status, out := api(t, r, http.MethodGet, "/v1/sessions/"+id, nil)
	require.Equal(t, http.StatusOK, status, "%v", out)
	return out["status"].(string)
}

func openFiles(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(entries)
}

// One limited session makes 30,000 connection attempts to its egress
// socket under real bubblewrap, holding thousands after "CONNECT ": the
// daemon holds at most its per-session cap of them, refuses the rest at
// once, /livez and a session retrieve keep answering, another session
// completes a turn, and the refusals are logged at WARN a few times, not
// 30,000.
func TestEgressFloodFromOneSessionLeavesTheDaemonServing(t *testing.T) {
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("bwrap is not installed (Debian package bubblewrap)")
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	const maxPerSession = 64
	cfg := localConfig(t, "bubblewrap")
	cfg.Local.Egress = daemon.LocalEgress{MaxConnectionsPerSession: maxPerSession, HeaderTimeout: time.Minute}
	cfg.Local.Agents = []daemon.LocalAgent{
		{ID: "agent_flood", Version: 1, Command: []string{exe, egressFloodCommand, "30000", "15000"}},
		{ID: "agent_ok", Version: 1, Command: []string{"/bin/sh", "-c", "echo ok"}},
	}
	cfg.Local.Environments = []daemon.LocalEnvironment{
		{ID: "env_limited", Timeout: 5 * time.Minute, Networking: daemon.LocalNetworking{Type: "limited", AllowedHosts: []string{"example.com"}}},
		{ID: "env_open", Timeout: time.Minute},
	}
	r := start(t, cfg, daemon.Options{})
	baseline := openFiles(t)

	flood := newLocalSession(t, r, "agent_flood", "env_limited")
	status, out := sendText(t, r, flood, "go")
	require.Equal(t, http.StatusOK, status, "%v", out)
	ev := awaitEvent(t, r, flood, messageSaying("flooded:"))
	said := ev.AsAgentMessage().Content[0].Text
	t.Log(said)
	assert.Contains(t, said, "flooded: 30000 attempts")

	// The harness holds everything it got; the daemon holds its cap.
	held := openFiles(t) - baseline
	t.Logf("daemon files while the harness holds its connections: %d over the baseline of %d", held, baseline)
	assert.Less(t, held, maxPerSession+100, "the daemon holds at most the session's cap of egress connections")

	status, _ = api(t, r, http.MethodGet, "/livez", nil)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "running", sessionStatus(t, r, flood))
	other := newLocalSession(t, r, "agent_ok", "env_open")
	status, out = sendText(t, r, other, "hello")
	require.Equal(t, http.StatusOK, status, "%v", out)
	awaitEvent(t, r, other, messageSaying("ok"))
	awaitEvent(t, r, other, isType("session.status_idle"))

	resp, err := socketClient(r.socket).Get("http://sandbox0d/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Regexp(t, `sandbox0d_sandbox_egress_total\{decision="refused"\} [1-9]`, string(metrics))
	for _, line := range strings.Split(string(metrics), "\n") {
		if strings.HasPrefix(line, "sandbox0d_sandbox_egress_total") {
			t.Log(line)
		}
	}
	logs := r.logs.String()
	refusals := strings.Count(logs, "egress connection refused")
	t.Logf("WARN lines for refusals: %d", refusals)
	assert.Positive(t, refusals)
	assert.Less(t, refusals, 20, "refusals are logged a few times, not once each")

	require.NoError(t, os.WriteFile(filepath.Join(cfg.DataDir, "workspaces", flood, "release"), nil, 0o600))
	awaitEvent(t, r, flood, isType("session.status_idle"))
}

// Over max_connections a listener answers 503 with the error envelope at
// once and holds nothing; a freed slot serves again.
func TestAPIConnectionCap(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(t.TempDir())
	cfg.MaxConnections = 4
	cfg.Listen = "127.0.0.1:0"
	cfg.Auth.APIKeys = []string{"sk-pressure-test"}
	r := start(t, cfg, daemon.Options{})

	// The TCP listener has its own cap, refused the same way.
	var tcpHeld []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", r.d.TCPAddr().String())
		require.NoError(t, err)
		tcpHeld = append(tcpHeld, c)
	}
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", r.d.TCPAddr().String())
		require.NoError(t, err)
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		data, _ := io.ReadAll(c)
		return strings.HasPrefix(string(data), "HTTP/1.1 503") && strings.Contains(string(data), "max_connections")
	}, 10*time.Second, 10*time.Millisecond)
	for _, c := range tcpHeld {
		c.Close()
	}

	var held []net.Conn
	for range 4 {
		c, err := net.Dial("unix", r.socket)
		require.NoError(t, err)
		held = append(held, c)
	}
	// The fifth is answered whatever the others do: they are idle and hold
	// their slots until the header timeout.
	var refusal string
	require.Eventually(t, func() bool {
		c, err := net.Dial("unix", r.socket)
		require.NoError(t, err)
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		data, _ := io.ReadAll(c)
		refusal = string(data)
		return strings.HasPrefix(refusal, "HTTP/1.1 503")
	}, 10*time.Second, 10*time.Millisecond)
	assert.Contains(t, refusal, `"type":"overloaded_error"`)
	assert.Contains(t, refusal, "max_connections")
	assert.Contains(t, r.logs.String(), "API connection refused")
	assert.Contains(t, r.logs.String(), `msg="open-file limit" soft=`, "the limit in force is logged at start")

	held[0].Close()
	for _, c := range held[1:] {
		defer c.Close()
	}
	require.Eventually(t, func() bool {
		resp, err := socketClient(r.socket).Get("http://sandbox0d/livez")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 10*time.Millisecond)
}

// The pressure keys load from the file, have their documented defaults,
// and a bad value names its key.
func TestPressureConfigKeys(t *testing.T) {
	t.Parallel()
	cfg, err := daemon.LoadConfig(newViperWithFlags(t), writeConfig(t, "backend: none\n"))
	require.NoError(t, err)
	assert.Equal(t, 1024, cfg.MaxConnections)
	assert.Equal(t, int64(256<<20), cfg.Disk.MinFree)
	assert.Equal(t, 256, cfg.Local.Egress.MaxConnectionsPerSession)
	assert.Equal(t, 10*time.Second, cfg.Local.Egress.HeaderTimeout)

	cfg, err = daemon.LoadConfig(newViperWithFlags(t), writeConfig(t, `backend: local
max_connections: 100
disk:
  min_free: 1048576
local:
  sandbox: none
  egress:
    max_connections_per_session: 32
    header_timeout: 5s
  environments:
    - id: env_small
      limits:
        workspace_bytes: 1073741824
`))
	require.NoError(t, err)
	assert.Equal(t, 100, cfg.MaxConnections)
	assert.Equal(t, int64(1<<20), cfg.Disk.MinFree)
	assert.Equal(t, 32, cfg.Local.Egress.MaxConnectionsPerSession)
	assert.Equal(t, 5*time.Second, cfg.Local.Egress.HeaderTimeout)
	assert.Equal(t, int64(1<<30), cfg.Local.Environments[0].Limits.WorkspaceBytes)

	_, err = daemon.LoadConfig(newViperWithFlags(t), writeConfig(t, `local:
  environments:
    - id: env_bad
      limits:
        workspace_bytes: -5
`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "local.environments[0].limits.workspace_bytes")
	_, err = daemon.LoadConfig(newViperWithFlags(t), writeConfig(t, "disk:\n  min_free: -1\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "disk.min_free")
}
