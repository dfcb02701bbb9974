package daemon_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
)

// A harness fills the data dir's small file system: its turn is stopped
// with a session.error saying the disk is nearly full, API writes answer
// 507 saying so, /readyz is not OK while /livez and reads answer; once the
// space is freed everything resumes and another session completes a turn.
func TestDiskFillerOnASmallFileSystem(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	cfg := baseConfig(dir)
	require.NoError(t, os.MkdirAll(cfg.DataDir, 0o700))
	if err := syscall.Mount("tmpfs", cfg.DataDir, "tmpfs", 0, "size=48m"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(cfg.DataDir, syscall.MNT_DETACH) })
	cfg.Backend = "local"
	cfg.Disk.MinFree = 16 << 20
	cfg.Local = daemon.LocalConfig{Sandbox: "none",
		Agents: []daemon.LocalAgent{
			// Fills the disk (head stops at ENOSPC), says so, and keeps
			// talking until it is stopped.
			{ID: "agent_filler", Version: 1, Command: []string{"/bin/sh", "-c",
				"head -c 100000000 /dev/zero > fill; echo filled; while :; do echo more; sleep 0.05; done"}},
			{ID: "agent_ok", Version: 1, Command: []string{"/bin/sh", "-c", "echo ok"}},
		},
		Environments: []daemon.LocalEnvironment{{ID: "env_disk", Timeout: 20 * time.Second}},
	}
	r := start(t, cfg, daemon.Options{})
	status, _ := api(t, r, http.MethodGet, "/readyz", nil)
	require.Equal(t, http.StatusOK, status)

	filler := newLocalSession(t, r, "agent_filler", "env_disk")
	status, out := sendText(t, r, filler, "fill it")
	require.Equal(t, http.StatusOK, status, "%v", out)
	fill := filepath.Join(cfg.DataDir, "workspaces", filler, "fill")
	require.Eventually(t, func() bool {
		var st syscall.Statfs_t
		return syscall.Statfs(cfg.DataDir, &st) == nil && uint64(st.Bavail)*uint64(st.Bsize) < 1<<20
	}, time.Minute, 10*time.Millisecond, "the harness fills the file system")

	// The daemon looks at the free space at least every second.
	require.Eventually(t, func() bool {
		status, out = api(t, r, http.MethodGet, "/readyz", nil)
		return status == http.StatusServiceUnavailable
	}, time.Minute, 50*time.Millisecond, "/readyz reports the disk")
	assert.Contains(t, fmt.Sprint(out["checks"]), "nearly full")

	status, out = api(t, r, http.MethodPost, "/v1/sessions", map[string]any{"agent": "agent_ok", "environment_id": "env_disk"})
	assert.Equal(t, http.StatusInsufficientStorage, status, "%v", out)
	assert.Contains(t, fmt.Sprint(out["error"]), "the data directory's file system is nearly full")
	assert.Contains(t, fmt.Sprint(out["error"]), "disk.min_free reserve is 16 MiB")
	status, out = api(t, r, http.MethodPost, "/v1/deployments", map[string]any{"name": "x"})
	assert.Equal(t, http.StatusInsufficientStorage, status, "%v", out)

	status, _ = api(t, r, http.MethodGet, "/livez", nil)
	assert.Equal(t, http.StatusOK, status)
	status, _ = api(t, r, http.MethodGet, "/v1/sessions/"+filler, nil)
	assert.Equal(t, http.StatusOK, status)

	require.NoError(t, os.Remove(fill))
	ev := awaitEvent(t, r, filler, isType("session.error"))
	assert.Contains(t, ev.AsSessionError().Error.Message, "the data directory's file system is nearly full")
	awaitEvent(t, r, filler, isType("session.status_idle"))
	require.Eventually(t, func() bool {
		status, _ := api(t, r, http.MethodGet, "/readyz", nil)
		return status == http.StatusOK
	}, time.Minute, 50*time.Millisecond, "/readyz recovers once space returns")

	ok := newLocalSession(t, r, "agent_ok", "env_disk")
	status, out = sendText(t, r, ok, "hello")
	require.Equal(t, http.StatusOK, status, "%v", out)
	awaitEvent(t, r, ok, messageSaying("ok"))
	awaitEvent(t, r, ok, isType("session.status_idle"))
}
