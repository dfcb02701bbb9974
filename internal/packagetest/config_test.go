package packagetest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/viper"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/sandbox0/sandbox0d/daemon"
)

// The packaged /etc/sandbox0d/config.yaml loads with no warning (strict
// keys: a renamed key fails here, not at the first start of an installed
// package), leaves the data directory and socket to the unit, opens no TCP
// listener, and runs the harness the package installs.
func TestPackagedConfig(t *testing.T) {
	file := filepath.Join("..", "..", "packaging", "config.yaml")
	cfg, err := daemon.LoadConfig(viper.New(), file)
	require.NoError(t, err)
	assert.Empty(t, cfg.Warnings)
	assert.Equal(t, "local", cfg.Backend)
	assert.Empty(t, cfg.Listen, "the package serves the socket only until the admin opens TCP")
	require.NotEmpty(t, cfg.Local.Agents)
	assert.Equal(t, "agent_echo", cfg.Local.Agents[0].ID)
	assert.Equal(t, []string{"/usr/lib/sandbox0d/echo-harness.sh"}, cfg.Local.Agents[0].Command,
		"the harness the package installs (packaging/contents.go)")

	data, err := os.ReadFile(file)
	require.NoError(t, err)
	var raw map[string]any
	require.NoError(t, yaml.Unmarshal(data, &raw))
	for _, key := range []string{"data_dir", "socket"} {
		assert.NotContains(t, raw, key, "the unit's StateDirectory and RuntimeDirectory give %s", key)
	}
}
