package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
)

func socketClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
}

func do(t *testing.T, c *http.Client, method, url, key string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, r)
	require.NoError(t, err)
	req.Header.Set("anthropic-beta", "managed-agents-2026-04-01")
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	return resp.StatusCode, out
}

func TestAccessControl(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := baseConfig(dir)
	cfg.Listen = "127.0.0.1:0"
	r := start(t, cfg, daemon.Options{Backend: sessionstest.New(map[string]int64{"agent_a": 1})})
	tcp := "http://" + r.d.TCPAddr().String()
	sock := socketClient(cfg.Socket)

	status, body := do(t, http.DefaultClient, "GET", tcp+"/v1/deployments", "", nil)
	assert.Equal(t, 401, status)
	assert.Equal(t, "authentication_error", body["error"].(map[string]any)["type"])
	status, _ = do(t, sock, "GET", "http://s/v1/deployments", "", nil)
	assert.Equal(t, 200, status, "socket callers are trusted")

	// Admin routes are socket-only.
	status, _ = do(t, http.DefaultClient, "POST", tcp+"/admin/apikeys", "", map[string]any{"name": "x"})
	assert.Equal(t, 403, status)

	status, created := do(t, sock, "POST", "http://s/admin/apikeys", "", map[string]any{"name": "ci"})
	require.Equal(t, 200, status)
	key := created["key"].(string)
	assert.True(t, strings.HasPrefix(key, "s0d_"))

	status, _ = do(t, http.DefaultClient, "GET", tcp+"/v1/deployments", key, nil)
	assert.Equal(t, 200, status, "x-api-key")
	req, _ := http.NewRequest("GET", tcp+"/v1/deployments", nil)
	req.Header.Set("anthropic-beta", "managed-agents-2026-04-01")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode, "Authorization: Bearer")
	status, _ = do(t, http.DefaultClient, "GET", tcp+"/v1/deployments", key+"x", nil)
	assert.Equal(t, 401, status, "wrong key")

	// Only the hash is stored; listing never shows the key.
	status, list := do(t, sock, "GET", "http://s/admin/apikeys", "", nil)
	require.Equal(t, 200, status)
	raw, _ := json.Marshal(list)
	assert.NotContains(t, string(raw), key)
	assert.NotNil(t, list["data"].([]any)[0].(map[string]any)["last_used_at"], "use is tracked")

	status, _ = do(t, sock, "POST", "http://s/admin/apikeys/"+created["id"].(string)+"/revoke", "", nil)
	require.Equal(t, 200, status)
	status, _ = do(t, http.DefaultClient, "GET", tcp+"/v1/deployments", key, nil)
	assert.Equal(t, 401, status, "revoked key")

	// Health needs no key.
	status, _ = do(t, http.DefaultClient, "GET", tcp+"/livez", "", nil)
	assert.Equal(t, 200, status)
	status, ready := do(t, http.DefaultClient, "GET", tcp+"/readyz", "", nil)
	assert.Equal(t, 200, status, "%v", ready)
	r.stop(t)

	raw, err = os.ReadFile(filepath.Join(cfg.DataDir, "sandbox0d.db"))
	require.NoError(t, err)
	assert.False(t, bytes.Contains(raw, []byte(key)), "the database holds only key hashes")
}

func TestRefusesPublicTCPWithoutKeyOrTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := baseConfig(dir)
	cfg.Listen = "0.0.0.0:0"
	_, err := daemon.New(cfg, slog.New(slog.DiscardHandler), daemon.Options{Backend: sessionstest.New(nil)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no API key")

	cfg.Auth.APIKeys = []string{"s0d_configured"}
	_, err = daemon.New(cfg, slog.New(slog.DiscardHandler), daemon.Options{Backend: sessionstest.New(nil)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "without TLS")

	cfg.Auth.AllowPlaintextTCP = true
	r := start(t, cfg, daemon.Options{Backend: sessionstest.New(nil)})
	port := r.d.TCPAddr().(*net.TCPAddr).Port
	status, _ := do(t, http.DefaultClient, "GET", "http://127.0.0.1:"+strconv.Itoa(port)+"/v1/deployments", "s0d_configured", nil)
	assert.Equal(t, 200, status, "a configured key works")
}

func TestSdNotifyReadyThenStopping(t *testing.T) {
	dir := t.TempDir()
	notify := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	require.NoError(t, err)
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", notify)

	cfg := baseConfig(dir)
	r := start(t, cfg, daemon.Options{Backend: sessionstest.New(nil)})
	r.stop(t)

	var states []string
	buf := make([]byte, 512)
	for len(states) < 2 {
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		n, err := conn.Read(buf)
		require.NoError(t, err)
		states = append(states, string(buf[:n]))
	}
	assert.True(t, strings.HasPrefix(states[0], "READY=1"), states[0])
	assert.Equal(t, "STOPPING=1", states[1])
}

func TestBackupOfLiveDaemonUnderWriteLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := baseConfig(dir)
	r := start(t, cfg, daemon.Options{Backend: sessionstest.New(map[string]int64{"agent_a": 1})})
	c := r.client()
	ctx := t.Context()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, err := c.Beta.Deployments.New(ctx, createParams("load"))
			if !assert.NoError(t, err) {
				return
			}
		}
	})
	time.Sleep(50 * time.Millisecond) // let the writer get going (load, not synchronisation)
	resp, err := socketClient(cfg.Socket).Get("http://s/admin/backup")
	require.NoError(t, err)
	backup := filepath.Join(dir, "backup.db")
	f, err := os.Create(backup)
	require.NoError(t, err)
	_, err = io.Copy(f, resp.Body)
	require.NoError(t, err)
	resp.Body.Close()
	require.NoError(t, f.Close())
	close(stop)
	wg.Wait()

	db, err := bolt.Open(backup, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		assert.NotNil(t, tx.Bucket([]byte("deployments")))
		return nil
	}))
	raw, err := os.ReadFile(backup)
	require.NoError(t, err)
	assert.False(t, bytes.Contains(raw, []byte("ghp_persist_me")), "tokens stay sealed in backups")
}

func TestGracefulShutdownDrainsFiresInFlight(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := baseConfig(dir)
	backend := sessionstest.New(map[string]int64{"agent_a": 1})
	backend.Block = make(chan struct{})
	backend.Entered = make(chan string, 8)
	r := start(t, cfg, daemon.Options{Backend: backend})
	c := r.client()
	d, err := c.Beta.Deployments.New(t.Context(), createParams("drain"))
	require.NoError(t, err)

	runDone := make(chan *anthropic.BetaManagedAgentsDeploymentRun, 1)
	go func() {
		run, err := c.Beta.Deployments.Run(context.Background(), d.ID, anthropic.BetaDeploymentRunParams{})
		assert.NoError(t, err)
		runDone <- run
	}()
	<-backend.Entered // the run is inside the backend
	stopped := make(chan struct{})
	go func() { r.stop(t); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("daemon stopped while a run was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(backend.Block)
	run := <-runDone
	<-stopped
	require.NotNil(t, run)
	assert.NotEmpty(t, run.SessionID)

	// Restart: the run is recorded and no intent was left behind.
	r2 := start(t, cfg, daemon.Options{Backend: sessionstest.New(map[string]int64{"agent_a": 1})})
	c2 := r2.client()
	got, err := c2.Beta.DeploymentRuns.Get(t.Context(), run.ID, anthropic.BetaDeploymentRunGetParams{})
	require.NoError(t, err)
	assert.Equal(t, run.SessionID, got.SessionID)
	assert.NotContains(t, r2.logs.String(), "resolved run intents")
}

func TestMetricsExposeRunsAndHTTP(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := baseConfig(dir)
	r := start(t, cfg, daemon.Options{Backend: sessionstest.New(map[string]int64{"agent_a": 1})})
	c := r.client()
	d, err := c.Beta.Deployments.New(t.Context(), createParams("m"))
	require.NoError(t, err)
	_, err = c.Beta.Deployments.Run(t.Context(), d.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	resp, err := socketClient(cfg.Socket).Get("http://s/metrics")
	require.NoError(t, err)
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(data)
	assert.Contains(t, text, `sandbox0d_deployments{status="active"} 1`)
	assert.Contains(t, text, `sandbox0d_runs_total{error_type="none",trigger="manual"} 1`)
	assert.Contains(t, text, `sandbox0d_http_requests_total{code="200",method="POST",route="/v1/deployments"} 1`)
	assert.Contains(t, text, "sandbox0d_scheduler_heap_size 1")
	assert.Contains(t, text, "sandbox0d_session_backend_seconds_bucket")
	assert.Contains(t, text, `sandbox0d_http_request_duration_seconds_bucket{method="POST",route="/v1/deployments",le=`)

	// Made-up methods do not mint new series.
	for i := range 20 {
		req, _ := http.NewRequest("X"+strconv.Itoa(i), "http://s/livez", nil)
		resp, err := socketClient(cfg.Socket).Do(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	resp, err = socketClient(cfg.Socket).Get("http://s/metrics")
	require.NoError(t, err)
	data, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.NotContains(t, string(data), `method="X1"`)
	assert.Contains(t, string(data), `method="other"`)
}
