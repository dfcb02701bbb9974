package daemon_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
)

// upstream.url over plain http beyond loopback stops the start, naming the
// key and the way out; upstream.allow_plaintext is that way out.
func TestPlaintextUpstreamNeedsAllowPlaintext(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(t.TempDir())
	cfg.Backend = "upstream"
	cfg.Upstream = daemon.UpstreamConfig{URL: "http://10.0.0.5", APIKey: "k"}
	_, err := daemon.New(cfg, slog.New(slog.DiscardHandler), daemon.Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "upstream.url")
	assert.Contains(t, err.Error(), "upstream.allow_plaintext")

	cfg.Upstream.AllowPlaintext = true
	cfg.Runs.Retention.Interval = time.Hour
	start(t, cfg, daemon.Options{})
}
