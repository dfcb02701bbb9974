package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/viper"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
)

// `sandbox0d docs man -o DIR` writes a section-1 page per visible command,
// for the packages to install.
func TestDocsManWritesPages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "man1")
	root := NewRoot()
	root.SetArgs([]string{"docs", "man", "-o", dir})
	require.NoError(t, root.Execute())
	for _, page := range []string{"sandbox0d.1", "sandbox0d-serve.1", "sandbox0d-cron-next.1", "sandbox0d-config-defaults.1"} {
		data, err := os.ReadFile(filepath.Join(dir, page))
		require.NoError(t, err, page)
		assert.Contains(t, string(data), ".TH \"SANDBOX0D\" \"1\"", page)
	}
	_, err := os.Stat(filepath.Join(dir, "sandbox0d-docs.1"))
	assert.True(t, os.IsNotExist(err), "the hidden docs command gets no page")
}

// `sandbox0d config defaults` prints YAML the daemon loads without error.
func TestConfigDefaultsLoadsBack(t *testing.T) {
	root := NewRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"config", "defaults"})
	require.NoError(t, root.Execute())
	assert.True(t, strings.HasPrefix(out.String(), "# sandbox0d configuration"), out.String())
	assert.Contains(t, out.String(), "# max deterministic delay per (deployment, scheduled_at)\n  jitter: 0s\n")
	file := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(file, out.Bytes(), 0o600))
	cfg, err := daemon.LoadConfig(viper.New(), file)
	require.NoError(t, err)
	assert.Equal(t, 256, cfg.Schedule.Workers)
	assert.Empty(t, cfg.Warnings)
}
