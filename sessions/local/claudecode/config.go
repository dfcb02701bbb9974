// Package claudecode is the "claude-code" harness of local sessions: each
// turn runs the Claude Code CLI headless (claude -p … --output-format
// stream-json) in the session's workspace, inside the session's sandbox, and
// maps what it prints to official session events (Mapper).
//
// Turn 1 starts a Claude Code session whose id is derived from the
// sandbox0d session id (ClaudeSessionID), so the id needs no storage of its
// own: every later turn runs --resume with it in the same workspace and HOME,
// and the conversation continues. The session's budget caps the whole
// session: each turn runs with --max-budget-usd set to what remains.
//
// It does not import sessions/local: the backend imports it.
package claudecode

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// DefaultBinary is claude_binary's default, looked up in PATH.
const DefaultBinary = "claude"

// HomeDirName is the directory in the workspace that is Claude Code's HOME
// when the backend names none: its settings, login state and session
// transcripts live there, never in the host user's HOME.
const HomeDirName = ".claude-home"

// Permission modes (--permission-mode).
const (
	PermissionDefault = "default"
	PermissionBypass  = "bypassPermissions"
)

var permissionModes = []string{"default", "acceptEdits", "auto", "bypassPermissions", "manual", "dontAsk", "plan"}

// Config is a claude-code agent's settings, the local.agents[] keys of an
// agent with harness: claude-code.
type Config struct {
	Model           string   // --model; empty: Claude Code's default
	System          string   // --system-prompt: replaces the default system prompt
	AppendSystem    string   // --append-system-prompt
	AllowedTools    []string // --allowedTools
	DisallowedTools []string // --disallowedTools
	// MCPServers is the path of an MCP config file (--mcp-config, with
	// --strict-mcp-config so nothing else is loaded).
	MCPServers string
	// MCPConfig is an MCP config as inline JSON (--mcp-config takes files
	// or strings), also with --strict-mcp-config: what an agent created
	// through the API declares in mcp_servers.
	MCPConfig string
	// Tools, when not nil, are the built-in tools Claude Code offers the
	// model (--tools; empty: none). nil keeps Claude Code's default set.
	Tools *[]string
	// Effort is --effort (low … max); empty: the model's default.
	Effort   string
	MaxTurns int // --max-turns; 0: no limit
	// PermissionMode defaults to bypassPermissions when the session is
	// sandboxed (the sandbox is the boundary) and default otherwise, where
	// a tool call that needs approval fails visibly.
	PermissionMode string
	// Binary is claude_binary: a path, or a name looked up in PATH;
	// default "claude".
	Binary string
	// Env is added to the harness environment.
	Env map[string]string
}

// ConfigError is a setting Validate refuses; Key is its config key
// (permission_mode, allowed_tools[1], …).
type ConfigError struct {
	Key     string
	Message string
}

func (e *ConfigError) Error() string { return e.Key + ": " + e.Message }

func configErrorf(key, format string, args ...any) error {
	return &ConfigError{Key: key, Message: fmt.Sprintf(format, args...)}
}

// Validate checks the settings; errors are *ConfigError.
func (c Config) Validate() error {
	if c.PermissionMode != "" && !slices.Contains(permissionModes, c.PermissionMode) {
		return configErrorf("permission_mode", "must be one of %s, got %q", strings.Join(permissionModes, ", "), c.PermissionMode)
	}
	if c.MaxTurns < 0 {
		return configErrorf("max_turns", "must be 0 (no limit) or more, got %d", c.MaxTurns)
	}
	for i, t := range c.AllowedTools {
		if strings.TrimSpace(t) == "" {
			return configErrorf(fmt.Sprintf("allowed_tools[%d]", i), "must not be empty")
		}
	}
	for i, t := range c.DisallowedTools {
		if strings.TrimSpace(t) == "" {
			return configErrorf(fmt.Sprintf("disallowed_tools[%d]", i), "must not be empty")
		}
	}
	if c.MCPServers != "" {
		if fi, err := os.Stat(c.MCPServers); err != nil {
			return configErrorf("mcp_servers", "%v", err)
		} else if fi.IsDir() {
			return configErrorf("mcp_servers", "%s is a directory; it must be an MCP config file", c.MCPServers)
		}
	}
	for k := range c.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return configErrorf("env", "invalid variable name %q", k)
		}
	}
	return nil
}

// sessionNamespace derives Claude Code session ids from sandbox0d session
// ids (a fixed random UUID; changing it would orphan every conversation).
var sessionNamespace = uuid.MustParse("6f1c3c39-5d0e-4b7a-9a55-3d2b1c0f8e42")

// ClaudeSessionID is the Claude Code session id of a sandbox0d session.
func ClaudeSessionID(sessionID string) string {
	return uuid.NewSHA1(sessionNamespace, []byte(sessionID)).String()
}

// TurnArgs are the per-turn inputs of the command line.
type TurnArgs struct {
	ClaudeSessionID string
	// Resume continues ClaudeSessionID's conversation; otherwise the turn
	// starts it with --session-id.
	Resume bool
	// Confined is whether the sandbox isolates the process.
	Confined bool
	// BudgetMicros, when > 0, is --max-budget-usd in millionths of USD.
	BudgetMicros int64
}

// Argv is the command line of one turn. binary is the resolved claude
// binary. The prompt goes to stdin, so no prompt text can read as a flag.
func (c Config) Argv(binary string, t TurnArgs) []string {
	argv := []string{binary, "-p",
		"--output-format", "stream-json", "--verbose", "--include-partial-messages",
		"--permission-mode", c.permissionMode(t.Confined)}
	if t.Resume {
		argv = append(argv, "--resume", t.ClaudeSessionID)
	} else {
		argv = append(argv, "--session-id", t.ClaudeSessionID)
	}
	if c.Model != "" {
		argv = append(argv, "--model", c.Model)
	}
	if c.System != "" {
		argv = append(argv, "--system-prompt", c.System)
	}
	if c.AppendSystem != "" {
		argv = append(argv, "--append-system-prompt", c.AppendSystem)
	}
	// Tool lists are joined into one argument: the flags take a variadic
	// list that would otherwise swallow the arguments after them.
	if len(c.AllowedTools) > 0 {
		argv = append(argv, "--allowedTools", strings.Join(c.AllowedTools, ","))
	}
	if len(c.DisallowedTools) > 0 {
		argv = append(argv, "--disallowedTools", strings.Join(c.DisallowedTools, ","))
	}
	if c.Tools != nil {
		argv = append(argv, "--tools", strings.Join(*c.Tools, ","))
	}
	if c.Effort != "" {
		argv = append(argv, "--effort", c.Effort)
	}
	switch {
	case c.MCPServers != "":
		argv = append(argv, "--mcp-config", c.MCPServers, "--strict-mcp-config")
	case c.MCPConfig != "":
		argv = append(argv, "--mcp-config", c.MCPConfig, "--strict-mcp-config")
	}
	if c.MaxTurns > 0 {
		argv = append(argv, "--max-turns", strconv.Itoa(c.MaxTurns))
	}
	if t.BudgetMicros > 0 {
		argv = append(argv, "--max-budget-usd", usd(t.BudgetMicros))
	}
	return argv
}

func (c Config) permissionMode(confined bool) string {
	switch {
	case c.PermissionMode != "":
		return c.PermissionMode
	case confined:
		return PermissionBypass
	}
	return PermissionDefault
}

// usd renders millionths of USD as a decimal number of dollars.
func usd(micros int64) string {
	s := fmt.Sprintf("%d.%06d", micros/1e6, micros%1e6)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// CredentialVars are the variables Claude Code authenticates with; one of
// them must reach it from an LLM vault.
var CredentialVars = []string{"ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"}

// ErrNoCredentials is returned by CheckCredentials.
var ErrNoCredentials = errors.New("this claude-code session has no Anthropic credentials: its environment has none of " +
	"ANTHROPIC_API_KEY, ANTHROPIC_AUTH_TOKEN or CLAUDE_CODE_OAUTH_TOKEN. Attach exactly one LLM vault " +
	"(a vault whose file sets one of them) to the deployment or session")

// CheckCredentials reports ErrNoCredentials unless env sets a credential
// variable to a non-empty value.
func CheckCredentials(env []string) error {
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if slices.Contains(CredentialVars, k) && strings.TrimSpace(v) != "" {
			return nil
		}
	}
	return ErrNoCredentials
}

// TurnEnv is the environment of a turn: the turn's (vaults, environment, agent
// variables the backend projected) with the agent's claude-code env on top,
// then what the harness imposes: no nonessential traffic or telemetry unless
// the operator asked for it, HOME in the workspace unless the sandbox gives
// one (home), and IS_SANDBOX=1 only inside a sandbox (Claude Code refuses
// bypassPermissions as root otherwise, rightly).
func (c Config) TurnEnv(base []string, home string, confined bool) []string {
	env := append([]string(nil), base...)
	keys := make([]string, 0, len(c.Env))
	for k := range c.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		env = setEnv(env, k, c.Env[k])
	}
	for _, kv := range [][2]string{
		{"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"},
		{"DISABLE_TELEMETRY", "1"},
		{"DISABLE_ERROR_REPORTING", "1"},
		{"DISABLE_AUTOUPDATER", "1"},
		{"CLAUDE_CODE_ENABLE_TELEMETRY", "0"},
	} {
		if !hasEnv(env, kv[0]) {
			env = setEnv(env, kv[0], kv[1])
		}
	}
	env = setEnv(env, "HOME", home)
	if confined {
		env = setEnv(env, "IS_SANDBOX", "1")
	} else {
		env = unsetEnv(env, "IS_SANDBOX")
	}
	return env
}

func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			return true
		}
	}
	return false
}

func unsetEnv(env []string, key string) []string {
	return slices.DeleteFunc(env, func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return k == key
	})
}

func setEnv(env []string, key, value string) []string {
	return append(unsetEnv(env, key), key+"="+value)
}

// Binary is the resolved claude binary and what a sandbox must show of it.
type Binary struct {
	// Path is the real file (symlinks resolved): npm installs "claude" as a
	// symlink to the package's bin/claude.exe.
	Path string
	// ReadOnly are the host paths the process needs to read: the npm
	// package directory of the resolved file (the directory above bin/
	// when the file is in one, where the package's other files live).
	ReadOnly []string
}

// ResolveBinary finds claude_binary: a name without a slash in PATH (the
// daemon's), otherwise the path itself.
func ResolveBinary(name string) (Binary, error) {
	if name == "" {
		name = DefaultBinary
	}
	found := name
	if !strings.Contains(name, "/") {
		p, err := exec.LookPath(name)
		if err != nil {
			return Binary{}, fmt.Errorf("claude_binary: %q is not in PATH (install Claude Code with npm install -g @anthropic-ai/claude-code, or set claude_binary to its path): %w", name, err)
		}
		found = p
	}
	abs, err := filepath.Abs(found)
	if err != nil {
		return Binary{}, fmt.Errorf("claude_binary: %w", err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return Binary{}, fmt.Errorf("claude_binary: %w", err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return Binary{}, fmt.Errorf("claude_binary: %w", err)
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return Binary{}, fmt.Errorf("claude_binary: %s is not an executable file", real)
	}
	// The turn runs Path itself, so the directory the name was found in
	// (a bin/ of symlinks, ~/.local/bin next to other tools) is not
	// needed: the sandbox shows the package and nothing beside it.
	pkg := filepath.Dir(real)
	if filepath.Base(pkg) == "bin" {
		pkg = filepath.Dir(pkg)
	}
	return Binary{Path: real, ReadOnly: []string{pkg}}, nil
}
