package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/viper"
)

// resolveConfigPaths makes every relative path the YAML file gives
// absolute, next to that file, so a config means the same wherever the
// daemon starts: `vault.env` beside config.yaml is found from any working
// directory. Values given by a flag or the environment are left as typed
// and resolve against the working directory, as a command line does.
// Names that are not paths keep their meaning: a bare program name
// (git_binary, an agent's command, claude_binary) is looked up in PATH, and
// a bare signing_key_file names a systemd credential when
// $CREDENTIALS_DIRECTORY is set.
func resolveConfigPaths(cfg *Config, fromFile func(key string) bool) {
	if cfg.ConfigFile == "" {
		return
	}
	dir := cfg.ConfigFile
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	dir = filepath.Dir(dir)
	for _, p := range []struct {
		key  string
		path *string
	}{
		{"data_dir", &cfg.DataDir}, {"socket", &cfg.Socket}, {"identity_file", &cfg.IdentityFile},
		{"tls.cert", &cfg.TLS.Cert}, {"tls.key", &cfg.TLS.Key},
		{"auth.api_keys_file", &cfg.Auth.APIKeysFile}, {"upstream.api_key_file", &cfg.Upstream.APIKeyFile},
		{"local.files_dir", &cfg.Local.FilesDir}, {"local.workspace_dir", &cfg.Local.WorkspaceDir},
		{"local.credentials_dir", &cfg.Local.CredentialsDir},
	} {
		if fromFile(p.key) {
			*p.path = besideDir(dir, *p.path)
		}
	}
	if fromFile("local.git_binary") {
		cfg.Local.GitBinary = programBesideDir(dir, cfg.Local.GitBinary)
	}
	if fromFile("local.claude_binary") {
		cfg.Local.ClaudeBinary = programBesideDir(dir, cfg.Local.ClaudeBinary)
	}
	// Lists of structs come from the file only.
	for i := range cfg.Local.Vaults {
		cfg.Local.Vaults[i].File = besideDir(dir, cfg.Local.Vaults[i].File)
	}
	for i := range cfg.Local.Agents {
		a := &cfg.Local.Agents[i]
		if len(a.Command) > 0 {
			a.Command = append([]string(nil), a.Command...)
			a.Command[0] = programBesideDir(dir, a.Command[0])
		}
		a.MCPServers = besideDir(dir, a.MCPServers) // a file, never looked up in PATH
		a.ReadOnly = append([]string(nil), a.ReadOnly...)
		for j, ro := range a.ReadOnly {
			a.ReadOnly[j] = besideDir(dir, ro)
		}
		a.ClaudeBinary = programBesideDir(dir, a.ClaudeBinary)
	}
	for i := range cfg.Webhooks.Endpoints {
		ep := &cfg.Webhooks.Endpoints[i]
		if os.Getenv("CREDENTIALS_DIRECTORY") != "" && !strings.ContainsRune(ep.SigningKeyFile, '/') {
			continue // a credential name
		}
		ep.SigningKeyFile = besideDir(dir, ep.SigningKeyFile)
	}
}

// besideDir joins a relative path to dir; empty and absolute paths stay.
func besideDir(dir, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

// programBesideDir is besideDir for a program or file that may also be a
// bare name looked up in PATH ("git", "claude"): only a path with a slash
// ("./harness.sh", "bin/git") is relative to dir.
func programBesideDir(dir, path string) string {
	if !strings.ContainsRune(path, '/') {
		return path
	}
	return besideDir(dir, path)
}

// fileKeys tells which keys hold the config file's own value: set in the
// file and not overridden by a flag or environment variable.
func fileKeys(v *viper.Viper, used string) func(key string) bool {
	if used == "" {
		return func(string) bool { return false }
	}
	fv := viper.New()
	fv.SetConfigFile(used)
	fv.SetConfigType("yaml")
	if fv.ReadInConfig() != nil {
		return func(string) bool { return false }
	}
	return func(key string) bool {
		return fv.InConfig(key) && fmt.Sprint(fv.Get(key)) == fmt.Sprint(v.Get(key))
	}
}
