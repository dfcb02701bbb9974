package daemon

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/sandbox0/sandbox0d/internal/secretfile"
)

// warnExposedSecrets logs a WARN for every secret file of the config that
// group or others can read or write: whoever reads one holds what it
// opens (vault values, API access, forged webhooks, the upstream account,
// the TLS identity). The age identity is checked where it is loaded.
func warnExposedSecrets(cfg Config, log *slog.Logger) {
	for i, v := range cfg.Local.Vaults {
		secretfile.WarnIfExposed(log, fmt.Sprintf("local.vaults[%d].file", i), v.File)
	}
	secretfile.WarnIfExposed(log, "auth.api_keys_file", cfg.Auth.APIKeysFile)
	secretfile.WarnIfExposed(log, "upstream.api_key_file", cfg.Upstream.APIKeyFile)
	secretfile.WarnIfExposed(log, "tls.key", cfg.TLS.Key)
	for i, ep := range cfg.Webhooks.Endpoints {
		secretfile.WarnIfExposed(log, fmt.Sprintf("webhooks.endpoints[%d].signing_key_file", i), signingKeyPath(ep.SigningKeyFile))
	}
}

// signingKeyPath is the file a signing_key_file names: a bare name is a
// systemd credential when $CREDENTIALS_DIRECTORY is set (as the webhooks
// package reads it).
func signingKeyPath(name string) string {
	if dir := os.Getenv("CREDENTIALS_DIRECTORY"); name != "" && dir != "" && !strings.ContainsRune(name, '/') {
		return filepath.Join(dir, name)
	}
	return name
}
