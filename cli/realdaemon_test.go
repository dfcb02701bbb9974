package cli

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
)

// realDaemon is a whole sandbox0d (store, keyring, backend, listeners)
// running in this process, for tests of what an operator does against it.
type realDaemon struct {
	cfg    daemon.Config
	socket string
	d      *daemon.Daemon
}

// startRealDaemon runs a daemon with the none backend in a temporary
// directory; configure adjusts the config before it starts.
func startRealDaemon(t *testing.T, configure func(*daemon.Config)) *realDaemon {
	t.Helper()
	dir := t.TempDir()
	cfg := daemon.Config{
		DataDir: filepath.Join(dir, "data"), Socket: filepath.Join(dir, "d.sock"), Backend: "none",
		ShutdownTimeout: 5 * time.Second, Log: daemon.LogConfig{Level: "info", Format: "text"},
		Schedule: daemon.ScheduleConfig{Workers: 4, MisfireGrace: time.Minute},
		Runs:     daemon.RunsConfig{Retention: daemon.RetentionConfig{Interval: time.Hour}},
	}
	if configure != nil {
		configure(&cfg)
	}
	d, err := daemon.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), daemon.Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	<-d.Ready()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return &realDaemon{cfg: cfg, socket: cfg.Socket, d: d}
}
