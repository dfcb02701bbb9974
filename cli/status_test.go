package cli

import (
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
)

// sandbox0d status prints /readyz over the socket: the local sandbox in
// force among the checks.
func TestStatusShowsTheSandbox(t *testing.T) {
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("bwrap is not installed (Debian package bubblewrap)")
	}
	for mode, want := range map[string]string{"auto": "bubblewrap", "none": "none (unconfined)"} {
		d := startRealDaemon(t, func(c *daemon.Config) { c.Backend, c.Local.Sandbox = "local", mode })
		res := runCLI(t, time.Now, nil, nil, "status", "--socket", d.socket)
		require.NoError(t, res.err, res.stderr)
		assert.Equal(t, "Status:     OK\nSandbox:    "+want+"\nScheduler:  ok\nStore:      ok\n", res.stdout, mode)
	}
}

// A daemon that is not ready: the checks still print, and the command
// fails naming the status.
func TestStatusNotReady(t *testing.T) {
	sock := serveUnix(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/readyz", r.URL.Path)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"Service Unavailable","checks":{"store":"database not open","scheduler":"ok"}}`))
	}))
	res := runCLI(t, time.Now, nil, nil, "status", "--socket", sock)
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), "is not ready (503 Service Unavailable)")
	assert.Equal(t, "Status:     Service Unavailable\nScheduler:  ok\nStore:      database not open\n", res.stdout)
}
