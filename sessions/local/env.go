package local

import (
	"maps"
	"slices"
	"strings"
)

// harnessPassthroughEnv are the daemon variables a harness inherits; the
// rest of the daemon's environment (its own config, secrets) stays out.
var harnessPassthroughEnv = []string{
	"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "TERM",
	"http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
}

// passthrough returns KEY=VALUE for the listed daemon variables that are set.
func (b *Backend) passthrough(keys []string) []string {
	vars := map[string]string{}
	for _, k := range keys {
		if v, ok := b.baseEnv[k]; ok {
			vars[k] = v
		}
	}
	return envList(vars)
}

func envList(vars map[string]string) []string {
	out := make([]string, 0, len(vars))
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		out = append(out, k+"="+vars[k])
	}
	return out
}

func environMap(environ []string) map[string]string {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			vars[k] = v
		}
	}
	return vars
}
