package daemon_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/webhooks"
)

// Relative paths in the YAML file resolve next to it, whatever the working
// directory; the same paths given by a flag or the environment resolve
// against the working directory; bare program and credential names keep
// their meaning.
func TestRelativeConfigPathsResolveNextToTheFile(t *testing.T) {
	confDir := t.TempDir()
	for name, body := range map[string]string{
		"hook.key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", "api.keys": "k1\n", "upstream.key": "sk\n",
		"vault.env": "A=b\n", "tls.crt": "", "tls.key": "",
	} {
		require.NoError(t, os.WriteFile(filepath.Join(confDir, name), []byte(body), 0o600))
	}
	file := filepath.Join(confDir, "config.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`data_dir: data
socket: run/s.sock
identity_file: keys/identity.age.txt
auth:
  api_keys_file: api.keys
upstream:
  api_key_file: ./upstream.key
webhooks:
  endpoints:
    - url: https://hooks.example.com/in
      signing_key_file: hook.key
local:
  files_dir: files
  workspace_dir: ws
  credentials_dir: creds
  git_binary: bin/git
  vaults:
    - id: vault_a
      file: vault.env
  agents:
    - id: agent_a
      command: [./harness.sh, ./not-resolved-argument]
    - id: agent_b
      command: [sh, -c, "echo"]
    - id: agent_c
      harness: claude-code
      mcp_servers: mcp.json
      claude_binary: bin/claude
`), 0o600))
	t.Chdir(t.TempDir()) // somewhere else entirely
	beside := func(p string) string { return filepath.Join(confDir, p) }

	cfg, err := daemon.LoadConfig(newViperWithFlags(t), file)
	require.NoError(t, err)
	assert.Equal(t, beside("data"), cfg.DataDir)
	assert.Equal(t, beside("run/s.sock"), cfg.Socket)
	assert.Equal(t, beside("keys/identity.age.txt"), cfg.IdentityFile)
	assert.Equal(t, beside("api.keys"), cfg.Auth.APIKeysFile)
	assert.Equal(t, beside("upstream.key"), cfg.Upstream.APIKeyFile)
	assert.Equal(t, beside("hook.key"), cfg.Webhooks.Endpoints[0].SigningKeyFile)
	assert.Equal(t, beside("files"), cfg.Local.FilesDir)
	assert.Equal(t, beside("ws"), cfg.Local.WorkspaceDir)
	assert.Equal(t, beside("creds"), cfg.Local.CredentialsDir)
	assert.Equal(t, beside("bin/git"), cfg.Local.GitBinary)
	assert.Equal(t, beside("vault.env"), cfg.Local.Vaults[0].File)
	assert.Equal(t, []string{beside("harness.sh"), "./not-resolved-argument"}, cfg.Local.Agents[0].Command)
	assert.Equal(t, []string{"sh", "-c", "echo"}, cfg.Local.Agents[1].Command, "a bare name is looked up in PATH")
	assert.Equal(t, beside("mcp.json"), cfg.Local.Agents[2].MCPServers)
	assert.Equal(t, beside("bin/claude"), cfg.Local.Agents[2].ClaudeBinary)

	t.Run("flags and environment resolve against the working directory", func(t *testing.T) {
		t.Setenv("SANDBOX0D_AUTH_API_KEYS_FILE", "env.keys")
		cfg, err := daemon.LoadConfig(newViperWithFlags(t, "--data-dir", "flagdata", "--socket", "flag.sock"), file)
		require.NoError(t, err)
		assert.Equal(t, "flagdata", cfg.DataDir)
		assert.Equal(t, "flag.sock", cfg.Socket)
		assert.Equal(t, "env.keys", cfg.Auth.APIKeysFile)
		assert.Equal(t, beside("vault.env"), cfg.Local.Vaults[0].File, "the file's other paths still resolve next to it")
	})
	t.Run("a bare signing_key_file is a credential name under systemd", func(t *testing.T) {
		creds := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(creds, "hook.key"), []byte("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"), 0o600))
		t.Setenv("CREDENTIALS_DIRECTORY", creds)
		cfg, err := daemon.LoadConfig(newViperWithFlags(t), file)
		require.NoError(t, err)
		assert.Equal(t, "hook.key", cfg.Webhooks.Endpoints[0].SigningKeyFile)
	})
}

// Every secret file the config names draws a WARN at start when group or
// others can read it, naming the key; 0600 files draw none.
func TestStartWarnsAboutExposedSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), mode))
		require.NoError(t, os.Chmod(p, mode))
		return p
	}
	cfg := baseConfig(dir)
	cfg.Local.Vaults = []daemon.LocalVault{{ID: "vault_open", File: write("open.env", "A=b\n", 0o644)},
		{ID: "vault_closed", File: write("closed.env", "A=b\n", 0o600)}}
	cfg.Auth.APIKeysFile = write("api.keys", "k1\n", 0o640)
	cfg.Upstream.APIKeyFile = write("upstream.key", "sk\n", 0o604)
	cfg.Webhooks.Endpoints = append(cfg.Webhooks.Endpoints, webhooks.EndpointConfig{
		URL: "https://hooks.example.com/in", SigningKeyFile: write("hook.key", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", 0o644)})
	var logs bytes.Buffer
	d, err := daemon.New(cfg, slog.New(slog.NewTextHandler(&logs, nil)), daemon.Options{})
	require.NoError(t, err)
	r := startExisting(t, d, cfg)
	r.stop(t)
	out := logs.String()
	for _, key := range []string{"local.vaults[0].file", "auth.api_keys_file", "upstream.api_key_file", "webhooks.endpoints[0].signing_key_file"} {
		assert.Contains(t, out, "key="+key, out)
	}
	assert.NotContains(t, out, "key=local.vaults[1].file")
	assert.Contains(t, out, "restrict it with chmod 600")
}
