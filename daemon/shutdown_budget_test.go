package daemon_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/sandbox0/sandbox0d/daemon"
)

// The case: a harness that ignores SIGTERM, a long kill grace. The
// daemon must exit within shutdown_timeout (plus scheduling slack: this is
// a correctness bound, not a speed assertion), not shutdown timeout + 10 s
// + the grace + the grace again.
func TestShutdownIsOneBudget(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	harness := filepath.Join(dir, "stubborn.sh")
	require.NoError(t, os.WriteFile(harness, []byte("#!/bin/sh\ntrap '' TERM\necho started\nwhile :; do sleep 1; done\n"), 0o755))
	cfg := baseConfig(dir)
	cfg.Backend = "local"
	cfg.ShutdownTimeout = time.Second // SIGTERM (ignored) at 0.5s, SIGKILL at 1s
	cfg.Runs.Retention.Interval = time.Hour
	cfg.Local = daemon.LocalConfig{
		Agents:                []daemon.LocalAgent{{ID: "agent_a", Version: 1, Command: []string{harness}}},
		Environments:          []daemon.LocalEnvironment{{ID: "env_1", Timeout: 10 * time.Minute}},
		MaxConcurrentSessions: 2, KillGracePeriod: 10 * time.Second, GitBinary: "git",
	}
	r := start(t, cfg, daemon.Options{})
	sock := socketClient(cfg.Socket)
	status, d := do(t, sock, "POST", "http://s/v1/deployments", "", map[string]any{
		"name": "stubborn", "agent": "agent_a", "environment_id": "env_1",
		"initial_events": []any{map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": "hi"}}}},
	})
	require.Equal(t, 200, status, "%v", d)
	status, run := do(t, sock, "POST", "http://s/v1/deployments/"+d["id"].(string)+"/run", "", nil)
	require.Equal(t, 200, status, "%v", run)
	sessionID, _ := run["session_id"].(string)
	require.NotEmpty(t, sessionID, "%v", run)
	require.Eventually(t, func() bool { // the harness runs (and ignores SIGTERM) before shutdown begins
		_, events := do(t, sock, "GET", "http://s/v1/sessions/"+sessionID+"/events", "", nil)
		return strings.Contains(fmt.Sprint(events["data"]), "started")
	}, 30*time.Second, 20*time.Millisecond)

	began := time.Now()
	r.stop(t)
	took := time.Since(began)
	assert.Less(t, took, cfg.ShutdownTimeout+500*time.Millisecond, "shutdown took %s with shutdown_timeout %s", took, cfg.ShutdownTimeout)
	assert.Contains(t, r.logs.String(), "stopped 1 running turn")
}

// A client that starts downloading /admin/backup and stops reading holds a
// bbolt read transaction in the handler; closing the store would wait for
// it forever. The shutdown cuts such connections at the deadline and still
// ends within shutdown_timeout.
func TestShutdownCutsAStalledBackupDownload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := baseConfig(dir)
	cfg.ShutdownTimeout = time.Second
	// A database far larger than a socket buffer, so the handler blocks
	// writing it while the client reads nothing.
	require.NoError(t, os.MkdirAll(cfg.DataDir, 0o700))
	db, err := bolt.Open(filepath.Join(cfg.DataDir, "sandbox0d.db"), 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("test_filler"))
		if err != nil {
			return err
		}
		for i := range 64 {
			if err := b.Put(fmt.Appendf(nil, "k%03d", i), make([]byte, 128<<10)); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, db.Close())
	r := start(t, cfg, daemon.Options{})

	conn, err := net.Dial("unix", cfg.Socket)
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "GET /admin/backup HTTP/1.1\r\nHost: s\r\n\r\n")
	require.NoError(t, err)
	head := make([]byte, 12)
	_, err = io.ReadFull(conn, head) // the download has begun; read no more
	require.NoError(t, err)
	require.Equal(t, "HTTP/1.1 200", string(head))

	began := time.Now()
	r.stop(t)
	took := time.Since(began)
	assert.Less(t, took, cfg.ShutdownTimeout+500*time.Millisecond, "shutdown took %s with shutdown_timeout %s", took, cfg.ShutdownTimeout)
}
