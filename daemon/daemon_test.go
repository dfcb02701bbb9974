package daemon_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/anthropics/anthropic-sdk-go/v2/packages/param"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
)

// running is a daemon serving on a Unix socket in a temp dir.
type running struct {
	d      *daemon.Daemon
	cancel context.CancelFunc
	done   chan error
	socket string
	logs   *syncBuffer
}

func baseConfig(dir string) daemon.Config {
	return daemon.Config{
		DataDir: filepath.Join(dir, "data"), Socket: filepath.Join(dir, "s.sock"), Backend: "none",
		ShutdownTimeout: 5e9, Log: daemon.LogConfig{Level: "info", Format: "text"},
		Schedule: daemon.ScheduleConfig{Workers: 4, MisfireGrace: 6e10},
	}
}

func start(t *testing.T, cfg daemon.Config, opts daemon.Options) *running {
	t.Helper()
	logs := &syncBuffer{}
	d, err := daemon.New(cfg, slog.New(slog.NewTextHandler(logs, nil)), opts)
	require.NoError(t, err)
	return startDaemon(t, d, cfg, logs)
}

func startExisting(t *testing.T, d *daemon.Daemon, cfg daemon.Config) *running {
	return startDaemon(t, d, cfg, &syncBuffer{})
}

// syncBuffer is a log sink safe for the daemon's concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startDaemon(t *testing.T, d *daemon.Daemon, cfg daemon.Config, logs *syncBuffer) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{d: d, cancel: cancel, done: make(chan error, 1), socket: cfg.Socket, logs: logs}
	go func() { r.done <- d.Run(ctx) }()
	<-d.Ready()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	require.NoError(t, <-r.done)
	r.cancel = nil
}

// client talks to the daemon over its Unix socket with the official SDK.
func (r *running) client() anthropic.Client {
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", r.socket)
	}}}
	return anthropic.NewClient(option.WithBaseURL("http://sandbox0d"), option.WithHTTPClient(hc), option.WithAPIKey("unused"), option.WithMaxRetries(0))
}

func createParams(name string) anthropic.BetaDeploymentNewParams {
	return anthropic.BetaDeploymentNewParams{
		Name:          name,
		Agent:         anthropic.BetaDeploymentNewParamsAgentUnion{OfString: param.NewOpt("agent_a")},
		EnvironmentID: "env_1",
		InitialEvents: []anthropic.BetaManagedAgentsDeploymentInitialEventParamsUnion{{
			OfUserMessage: &anthropic.BetaManagedAgentsUserMessageEventParams{Content: []anthropic.BetaManagedAgentsUserMessageEventParamsContentUnion{
				{OfText: &anthropic.BetaManagedAgentsTextBlockParam{Text: "hello"}}}}}},
		Schedule: anthropic.BetaManagedAgentsScheduleParams{Expression: "30 2 * * *", Timezone: "America/New_York"},
		Resources: []anthropic.BetaDeploymentNewParamsResourceUnion{{OfGitHubRepository: &anthropic.BetaManagedAgentsGitHubRepositoryResourceParams{
			URL: "https://github.com/acme/repo", AuthorizationToken: "ghp_persist_me"}}},
	}
}

func TestPersistenceAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := baseConfig(dir)
	backend := sessionstest.New(map[string]int64{"agent_a": 7})
	first := start(t, cfg, daemon.Options{Backend: backend})
	ctx := t.Context()
	c := first.client()
	d, err := c.Beta.Deployments.New(ctx, createParams("persisted"))
	require.NoError(t, err)
	paused, err := c.Beta.Deployments.New(ctx, createParams("paused-one"))
	require.NoError(t, err)
	_, err = c.Beta.Deployments.Pause(ctx, paused.ID, anthropic.BetaDeploymentPauseParams{})
	require.NoError(t, err)
	run, err := c.Beta.Deployments.Run(ctx, d.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	first.stop(t)

	second := start(t, cfg, daemon.Options{Backend: backend})
	c = second.client()
	got, err := c.Beta.Deployments.Get(ctx, d.ID, anthropic.BetaDeploymentGetParams{})
	require.NoError(t, err)
	assert.Equal(t, d.Name, got.Name)
	assert.Equal(t, d.Schedule.Expression, got.Schedule.Expression)
	assert.Equal(t, d.CreatedAt, got.CreatedAt)
	gotPaused, err := c.Beta.Deployments.Get(ctx, paused.ID, anthropic.BetaDeploymentGetParams{})
	require.NoError(t, err)
	assert.Equal(t, "manual", gotPaused.PausedReason.Type)
	gotRun, err := c.Beta.DeploymentRuns.Get(ctx, run.ID, anthropic.BetaDeploymentRunGetParams{})
	require.NoError(t, err)
	assert.Equal(t, run.SessionID, gotRun.SessionID)
	// The sealed token still opens after the restart (same identity file).
	_, err = c.Beta.Deployments.Run(ctx, d.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	reqs := backend.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "ghp_persist_me", reqs[1].Resources[0].AuthorizationToken)
	second.stop(t)

	// The token never reached the database file in the clear.
	raw, err := os.ReadFile(filepath.Join(cfg.DataDir, "sandbox0d.db"))
	require.NoError(t, err)
	assert.False(t, bytes.Contains(raw, []byte("ghp_persist_me")), "token in the clear in the database file")
	// Sealed blobs are stored (base64 in the JSON document) as age files.
	assert.True(t, bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString([]byte("age-encryption.org/v1"))[:24])), "sealed blob present")
}

func TestSecondDaemonOnSameDataDirFailsFast(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := baseConfig(dir)
	start(t, cfg, daemon.Options{Backend: sessionstest.New(nil)})
	other := cfg
	other.Socket = filepath.Join(dir, "other.sock")
	_, err := daemon.New(other, slog.New(slog.NewTextHandler(io.Discard, nil)), daemon.Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "another sandbox0d")
}

func TestSocketIsGroupOnlyAndNeverClobbersAFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := baseConfig(dir)
	r := start(t, cfg, daemon.Options{Backend: sessionstest.New(nil)})
	fi, err := os.Stat(r.socket)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o660), fi.Mode().Perm())
	// It is bound in a private directory and linked into place: nothing of
	// that is left beside it, and closing it removes it.
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, strings.HasPrefix(e.Name(), ".s"), "left behind: %s", e.Name())
	}
	other := filepath.Join(dir, "other.sock")
	l, err := daemon.ListenSocket(other)
	require.NoError(t, err)
	conn, err := net.Dial("unix", other)
	require.NoError(t, err, "the socket answers at its path")
	require.NoError(t, conn.Close())
	require.NoError(t, l.Close())
	_, err = os.Lstat(other)
	assert.ErrorIs(t, err, os.ErrNotExist, "closing the listener removes the socket")

	// A live socket is not replaced by a second daemon.
	_, err = daemon.ListenSocket(r.socket)
	require.Error(t, err)
	// A regular file at the socket path is never removed.
	plain := filepath.Join(dir, "plain")
	require.NoError(t, os.WriteFile(plain, []byte("keep"), 0o600))
	_, err = daemon.ListenSocket(plain)
	require.Error(t, err)
	data, err := os.ReadFile(plain)
	require.NoError(t, err)
	assert.Equal(t, "keep", string(data))
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(file, []byte("listen: 127.0.0.1:1111\nsocket: /from/file.sock\ndata_dir: /from/file\nschedule:\n  jitter: 5s\n"), 0o600))
	t.Setenv("SANDBOX0D_SOCKET", "/from/env.sock")
	t.Setenv("SANDBOX0D_SCHEDULE_MISFIRE_GRACE", "2m")
	v := newViperWithFlags(t, "--data-dir", "/from/flag")
	cfg, err := daemon.LoadConfig(v, file)
	require.NoError(t, err)
	assert.Equal(t, "/from/flag", cfg.DataDir, "flag beats env and file")
	assert.Equal(t, "/from/env.sock", cfg.Socket, "env beats file")
	assert.Equal(t, "127.0.0.1:1111", cfg.Listen, "file beats default")
	assert.Equal(t, "5s", cfg.Schedule.Jitter.String())
	assert.Equal(t, "2m0s", cfg.Schedule.MisfireGrace.String())
	assert.Equal(t, "local", cfg.Backend, "local is the default backend without an upstream")

	t.Setenv("SANDBOX0D_SCHEDULE_WORKERS", "0")
	_, err = daemon.LoadConfig(newViperWithFlags(t), file)
	var ce *daemon.ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "schedule.workers", ce.Key)
}

var _ = json.Marshal

func TestDefaultsFollowSystemdDirectories(t *testing.T) {
	t.Setenv("STATE_DIRECTORY", "/var/lib/sandbox0d")
	t.Setenv("RUNTIME_DIRECTORY", "/run/sandbox0d")
	cfg, err := daemon.LoadConfig(newViperWithFlags(t), filepath.Join(t.TempDir(), "none.yaml"))
	if err == nil || !strings.Contains(err.Error(), "none.yaml") {
		t.Fatalf("an explicit missing config file must be an error, got %v", err)
	}
	cfg, err = daemon.LoadConfig(newViperWithFlags(t), "")
	require.NoError(t, err)
	assert.Equal(t, "/var/lib/sandbox0d", cfg.DataDir)
	assert.Equal(t, "/run/sandbox0d/sandbox0d.sock", cfg.Socket)
}
