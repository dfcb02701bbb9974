package claudecode

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestArgv(t *testing.T) {
	c := Config{Model: "claude-sonnet-5-5", System: "be brief", AppendSystem: "and kind",
		AllowedTools: []string{"Bash(git:*)", "Read"}, DisallowedTools: []string{"WebFetch"},
		MCPServers: "/etc/mcp.json", MaxTurns: 7}
	got := c.Argv("/opt/claude", TurnArgs{ClaudeSessionID: "u-1", Confined: true, BudgetMicros: 12_340_000})
	want := []string{"/opt/claude", "-p", "--output-format", "stream-json", "--verbose", "--include-partial-messages",
		"--permission-mode", "bypassPermissions", "--session-id", "u-1", "--model", "claude-sonnet-5-5",
		"--system-prompt", "be brief", "--append-system-prompt", "and kind", "--allowedTools", "Bash(git:*),Read",
		"--disallowedTools", "WebFetch", "--mcp-config", "/etc/mcp.json", "--strict-mcp-config", "--max-turns", "7",
		"--max-budget-usd", "12.34"}
	if !slices.Equal(got, want) {
		t.Errorf("argv\n got %q\nwant %q", got, want)
	}
	got = Config{}.Argv("claude", TurnArgs{ClaudeSessionID: "u-1", Resume: true})
	want = []string{"claude", "-p", "--output-format", "stream-json", "--verbose", "--include-partial-messages",
		"--permission-mode", "default", "--resume", "u-1"}
	if !slices.Equal(got, want) {
		t.Errorf("unconfined resume argv\n got %q\nwant %q", got, want)
	}
	if got := (Config{PermissionMode: "plan"}).permissionMode(true); got != "plan" {
		t.Errorf("explicit mode: %s", got)
	}
	for micros, want := range map[int64]string{1: "0.000001", 10_000: "0.01", 1_000_000: "1", 2_500_000_000: "2500", 1_234_567: "1.234567"} {
		if got := usd(micros); got != want {
			t.Errorf("usd(%d) = %s, want %s", micros, got, want)
		}
	}
}

func TestClaudeSessionIDIsStablePerSession(t *testing.T) {
	a, b := ClaudeSessionID("sesn_a"), ClaudeSessionID("sesn_b")
	if a == b || a != ClaudeSessionID("sesn_a") || len(a) != 36 {
		t.Errorf("ids %s %s", a, b)
	}
}

func TestValidate(t *testing.T) {
	mcp := filepath.Join(t.TempDir(), "mcp.json")
	os.WriteFile(mcp, []byte(`{"mcpServers":{}}`), 0o600)
	if err := (Config{MCPServers: mcp, PermissionMode: "acceptEdits", AllowedTools: []string{"Read"}}).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{PermissionMode: "yolo"}, "permission_mode"},
		{Config{MaxTurns: -1}, "max_turns"},
		{Config{AllowedTools: []string{"Read", " "}}, "allowed_tools[1]"},
		{Config{DisallowedTools: []string{""}}, "disallowed_tools[0]"},
		{Config{MCPServers: filepath.Join(t.TempDir(), "missing.json")}, "mcp_servers"},
		{Config{MCPServers: t.TempDir()}, "mcp_servers"},
		{Config{Env: map[string]string{"A=B": "c"}}, "env"},
	} {
		if err := tc.c.Validate(); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error about %s", tc.c, err, tc.want)
		}
	}
}

func TestTurnEnv(t *testing.T) {
	base := []string{"PATH=/usr/bin", "HOME=/root", "IS_SANDBOX=1", "DISABLE_TELEMETRY=0", "ANTHROPIC_API_KEY=k"}
	c := Config{Env: map[string]string{"FOO": "bar", "PATH": "/opt/bin"}}
	env := c.TurnEnv(base, "/ws/.claude-home", false)
	get := func(env []string, k string) (string, bool) {
		for _, kv := range env {
			if key, v, _ := strings.Cut(kv, "="); key == k {
				return v, true
			}
		}
		return "", false
	}
	for k, want := range map[string]string{"HOME": "/ws/.claude-home", "FOO": "bar", "PATH": "/opt/bin",
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "0", "ANTHROPIC_API_KEY": "k"} {
		if got, _ := get(env, k); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	if _, ok := get(env, "IS_SANDBOX"); ok {
		t.Error("IS_SANDBOX set outside a sandbox")
	}
	if got, _ := get(c.TurnEnv(base, "/h", true), "IS_SANDBOX"); got != "1" {
		t.Error("IS_SANDBOX not set inside a sandbox")
	}
	if slices.Equal(base, env) || base[1] != "HOME=/root" {
		t.Error("base was modified")
	}
}

func TestCheckCredentials(t *testing.T) {
	for _, env := range [][]string{{"ANTHROPIC_API_KEY=sk"}, {"X=1", "ANTHROPIC_AUTH_TOKEN=t"}, {"CLAUDE_CODE_OAUTH_TOKEN=o"}} {
		if err := CheckCredentials(env); err != nil {
			t.Errorf("%q: %v", env, err)
		}
	}
	for _, env := range [][]string{nil, {"ANTHROPIC_API_KEY="}, {"ANTHROPIC_API_KEY= "}, {"ANTHROPIC_BASE_URL=http://x", "OPENAI_API_KEY=k"}} {
		err := CheckCredentials(env)
		if !errors.Is(err, ErrNoCredentials) || !strings.Contains(err.Error(), "Attach exactly one LLM vault") {
			t.Errorf("%q: %v", env, err)
		}
	}
}

// npm installs claude as a symlink into the package's bin/: the resolved
// file and its package directory are what the sandbox must show, not the
// bin/ directory the name was found in.
func TestResolveBinary(t *testing.T) {
	root := t.TempDir()
	pkg := filepath.Join(root, "lib", "node_modules", "@anthropic-ai", "claude-code")
	os.MkdirAll(filepath.Join(pkg, "bin"), 0o755)
	os.WriteFile(filepath.Join(pkg, "bin", "claude.exe"), []byte("#!/bin/sh\n"), 0o755)
	binDir := filepath.Join(root, "bin")
	os.MkdirAll(binDir, 0o755)
	if err := os.Symlink("../lib/node_modules/@anthropic-ai/claude-code/bin/claude.exe", filepath.Join(binDir, "claude")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", binDir+string(os.PathListSeparator)+"/usr/bin")
	b, err := ResolveBinary("")
	if err != nil {
		t.Fatal(err)
	}
	if b.Path != filepath.Join(pkg, "bin", "claude.exe") || !slices.Equal(b.ReadOnly, []string{pkg}) {
		t.Errorf("resolved %+v", b)
	}
	if b2, err := ResolveBinary(filepath.Join(binDir, "claude")); err != nil || b2.Path != b.Path {
		t.Errorf("by path: %+v %v", b2, err)
	}
	os.WriteFile(filepath.Join(root, "plain"), []byte("x"), 0o644)
	for _, name := range []string{"no-such-claude", filepath.Join(root, "plain"), root} {
		if _, err := ResolveBinary(name); err == nil || !strings.HasPrefix(err.Error(), "claude_binary") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
