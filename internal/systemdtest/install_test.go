package systemdtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// config is examples/local.yaml edited as docs/install.md says (no data_dir or
// socket: the unit's directories are used; agent_echo runs the installed
// echo-harness.sh), without its TCP listener (the container shares the
// host's network, where the port may be taken), plus this test's agents
// and the LLM vault.
func config(t *testing.T, claude bool, llmURL string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repo, "examples/local.yaml"))
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal(data, &cfg))
	delete(cfg, "data_dir")
	delete(cfg, "socket")
	delete(cfg, "listen")
	local := cfg["local"].(map[string]any)
	agents := local["agents"].([]any)
	for _, a := range agents {
		if a := a.(map[string]any); a["id"] == "agent_echo" {
			a["command"] = []string{echoHarness}
		}
	}
	agents = append(agents, map[string]any{"id": "agent_hostile", "version": 1, "command": []string{hostileHarness}})
	if claude {
		agents = append(agents, map[string]any{"id": "agent_cc", "version": 1, "harness": "claude-code", "model": ccModel,
			"claude_binary": claudeDir + "/bin/claude.exe"})
	}
	local["agents"] = agents
	// The Claude Code session runs in env_local (unrestricted): its
	// projected key puts the CLI behind the egress proxy, which substitutes
	// it on requests to the scripted Messages API on the host's loopback,
	// the host the vault names. The base URL is no secret: it goes in the
	// environment (a projected vault's every value is a placeholder).
	u, err := url.Parse(llmURL)
	require.NoError(t, err)
	for _, e := range asSlice(local["environments"]) {
		if e := e.(map[string]any); e["id"] == "env_local" {
			e["env"] = map[string]any{"ANTHROPIC_BASE_URL": llmURL}
		}
	}
	local["vaults"] = append(asSlice(local["vaults"]), map[string]any{"id": "vault_llm", "file": "/etc/sandbox0d/anthropic.env",
		"hosts": []string{u.Hostname()}})
	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	return string(out)
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// install is docs/install.md's "Running under systemd" block: its go build
// line (run on the host) and the rest (run in the container).
type install struct {
	build  []string // go build's arguments
	binary string   // where it installs the binary
	script string
}

// installDoc is the manual's install page, whose systemd block this test runs.
const installDoc = "docs/install.md"

func readmeInstall(t *testing.T) install {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(repo, installDoc))
	require.NoError(t, err)
	m := regexp.MustCompile("(?s)## Running under systemd\n+```sh\n(.*?)```").FindSubmatch(doc)
	require.NotNil(t, m, "%s has no sh block under \"## Running under systemd\"", installDoc)
	first, rest, _ := strings.Cut(string(m[1]), "\n")
	build := strings.Fields(first)
	require.True(t, len(build) > 2 && build[0] == "go" && build[1] == "build",
		"the systemd install in docs/install.md must start with the go build line; this test runs it on the host: %q", first)
	var binary string
	for i, a := range build {
		if a == "-o" && i+1 < len(build) {
			binary = build[i+1]
		}
	}
	require.NotEmpty(t, binary, "docs/install.md's go build line names no -o: %q", first)
	return install{build: build[2:], binary: binary, script: rest}
}

// goBuild runs docs/install.md's go build with -o out, statically linked for the
// container (which has its own libc).
func goBuild(args []string, out string) error {
	args = append([]string(nil), args...)
	for i, a := range args {
		if a == "-o" && i+1 < len(args) {
			args[i+1] = out
		}
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, append([]string{"build"}, args...)...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.WaitDelay = time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(from)
	require.NoError(t, err)
	writeFile(t, to, string(data), mode)
}

func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(data), mode))
	require.NoError(t, os.Chmod(path, mode))
}
