package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const serveChildEnv = "SANDBOX0D_TEST_SERVE_CONFIG"

// TestServeChild is the daemon process of TestDeploymentsDirSIGHUP: the
// real `sandbox0d serve`, with its own signal handling.
func TestServeChild(t *testing.T) {
	cfg := os.Getenv(serveChildEnv)
	if cfg == "" {
		t.Skip("the daemon process of TestDeploymentsDirSIGHUP")
	}
	root := NewRoot()
	root.SetArgs([]string{"serve", "--config", cfg})
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func deploymentFile(name string) string {
	return fmt.Sprintf(`name: %s
agent: {type: agent, id: agent_a, version: 1}
environment_id: env_1
initial_events:
  - type: user.message
    content: [{type: text, text: go}]
schedule: {type: cron, expression: "0 9 * * *", timezone: UTC}
`, name)
}

// deployments_dir through a real daemon process: applied at start, again on
// SIGHUP; a broken file keeps the old state and counts the error.
func TestDeploymentsDirSIGHUP(t *testing.T) {
	if os.Getenv(serveChildEnv) != "" {
		t.Skip("in the child")
	}
	dir := t.TempDir()
	files := filepath.Join(dir, "deployments")
	require.NoError(t, os.MkdirAll(files, 0o700))
	write := func(name, content string) {
		require.NoError(t, os.WriteFile(filepath.Join(files, name), []byte(content), 0o600))
	}
	write("digest.yaml", deploymentFile("digest"))
	socket := filepath.Join(dir, "d.sock")
	config := filepath.Join(dir, "sandbox0d.yaml")
	require.NoError(t, os.WriteFile(config, []byte(fmt.Sprintf(
		"data_dir: %s\nsocket: %s\nbackend: none\ndeployments_dir: %s\n", filepath.Join(dir, "data"), socket, files)), 0o600))

	logs := &lockedBuffer{}
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), serveChildEnv+"="+config)
	cmd.Stderr = logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}}
	get := func(path string) (int, string) {
		req, _ := http.NewRequest("GET", "http://sandbox0d"+path, nil)
		req.Header.Set("anthropic-beta", "managed-agents-2026-04-01")
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	names := func() []string {
		status, body := get("/v1/deployments")
		if status != 200 {
			return nil
		}
		var page struct {
			Data []struct {
				Name      string          `json:"name"`
				ManagedBy json.RawMessage `json:"managed_by"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &page))
		var out []string
		for _, d := range page.Data {
			if d.ManagedBy != nil {
				out = append(out, d.Name)
			}
		}
		return out
	}
	// Polling a separate process's effects, with a deadline.
	eventually := func(cond func() bool, msg string) {
		require.Eventually(t, cond, 30*time.Second, 20*time.Millisecond, "%s; daemon log:\n%s", msg, logs.String())
	}
	eventually(func() bool { return fmt.Sprint(names()) == "[digest]" }, "applied at start")

	write("digest.yaml", deploymentFile("digest v2"))
	write("broken.yaml", "name: broken\nagent: {type: agent, id: agent_a, version: 1}\nenvironment_id: env_1\ninitial_events: []\nschedule: {type: cron, expression: \"61 * * * *\", timezone: UTC}\n")
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	eventually(func() bool {
		_, m := get("/metrics")
		return strings.Contains(m, "sandbox0d_apply_errors_total 1")
	}, "the broken file is counted")
	require.Equal(t, []string{"digest"}, names(), "the last good state keeps serving")

	require.NoError(t, os.Remove(filepath.Join(files, "broken.yaml")))
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	eventually(func() bool { return fmt.Sprint(names()) == "[digest v2]" }, "applied on SIGHUP")
	require.Contains(t, logs.String(), "broken.yaml", "the log named the broken file")
}

// lockedBuffer lets the child's stderr be read while it is written.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
