package local

import (
	"maps"
	"slices"
	"strconv"
	"strings"
)

// harnessPassthroughEnv are the daemon variables a harness inherits; the
// rest of the daemon's environment (its own config, secrets) stays out.
var harnessPassthroughEnv = []string{
	"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "TERM",
	"http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
}

// harnessEnv builds the harness environment. Later sources win: passthrough
// from the daemon, agent env, environment env, vault values, then the
// SANDBOX0D_* variables that describe the session.
func (b *Backend) harnessEnv(run *sessionRun) []string {
	vars := map[string]string{}
	for _, k := range harnessPassthroughEnv {
		if v, ok := b.baseEnv[k]; ok {
			vars[k] = v
		}
	}
	maps.Copy(vars, run.agent.Env)
	maps.Copy(vars, run.env.Env)
	maps.Copy(vars, run.vaultEnv)
	prompt := run.prompt
	if len(prompt) > maxPromptEnvBytes {
		// The kernel refuses larger single variables; stdin has the full text.
		prompt = strings.ToValidUTF8(prompt[:maxPromptEnvBytes], "")
	}
	maps.Copy(vars, map[string]string{
		"SANDBOX0D_SESSION_ID":     run.id,
		"SANDBOX0D_DEPLOYMENT_ID":  run.deploymentID,
		"SANDBOX0D_RUN_ID":         run.runID,
		"SANDBOX0D_AGENT_ID":       run.agent.ID,
		"SANDBOX0D_AGENT_VERSION":  strconv.FormatInt(run.agent.Version, 10),
		"SANDBOX0D_ENVIRONMENT_ID": run.env.ID,
		"SANDBOX0D_WORKSPACE":      run.workspace,
		"SANDBOX0D_PROMPT":         prompt,
		"PWD":                      run.workspace,
	})
	return envList(vars)
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
