package local

import (
	"context"
	"errors"
	"fmt"
	"github.com/sandbox0/sandbox0d/internal/configerr"
	"github.com/sandbox0/sandbox0d/store"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/sandbox0/sandbox0d/sessions/local/claudecode"
	"github.com/sandbox0/sandbox0d/sessions/local/egress"
	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
)

// Defaults of the local.* config keys, exported so the daemon can register
// them with its config loader.
const (
	DefaultMaxConcurrentSessions = 4
	DefaultWorkspaceRetention    = 7 * 24 * time.Hour
	DefaultSessionTimeout        = 30 * time.Minute
	DefaultMaxOutputBytes        = 10 << 20
	DefaultKillGracePeriod       = 10 * time.Second
	DefaultMaxEvents             = 100_000
	DefaultSessionRetention      = 30 * 24 * time.Hour
	DefaultGitBinary             = "git"
	// DefaultWorkspaceBytes is limits.workspace_bytes: room for a large
	// repository with its build outputs, far from what one session may
	// take of a shared disk.
	DefaultWorkspaceBytes = int64(10 << 30)
)

// Agent is a harness command that sessions of this agent run.
type Agent struct {
	// ID is what deployments reference: agent_… or any name the user picks.
	ID string
	// Version pins one definition; several versions of one ID may coexist and
	// "latest" is the highest. 0 means 1.
	Version int64
	// Command is the argv of the harness. A bare name is looked up in the
	// daemon's PATH; a relative path with a slash is relative to the workspace.
	Command []string
	// ClaudeCode, instead of Command, makes the agent's harness Claude Code
	// (harness: claude-code) with these settings.
	ClaudeCode *claudecode.Config
	// Env is added to the harness environment.
	Env map[string]string
	// ReadOnly are host paths (absolute) the harness may read inside a
	// sandbox beyond the system's: the rest of a harness made of more than
	// its program file (a script's library directory, a virtualenv).
	ReadOnly []string
	// Name, Description, Model and System describe the agent in the API's
	// agent objects; they do not change what the harness does. Name
	// defaults to ID; an unset Model shows as "" (unknown), an unset
	// Description or System as null.
	Name        string
	Description string
	Model       string
	System      string

	// mcpHosts are the hosts of an API agent's MCP servers (reachable from
	// a limited environment with allow_mcp_servers); fromAPI marks an
	// agent created through the API (agents_api.go).
	mcpHosts []string
	fromAPI  bool
	archived bool
}

// Environment is the execution policy a session runs under.
type Environment struct {
	ID  string
	Env map[string]string
	// Timeout bounds one turn (with the workspace preparation for the
	// first); 0 means DefaultSessionTimeout.
	Timeout time.Duration
	// MaxOutputBytes caps what one turn stores: each event's JSON plus
	// eventOverheadBytes. 0 means DefaultMaxOutputBytes.
	MaxOutputBytes int64
	// MaxEvents caps the events one turn emits; 0 means DefaultMaxEvents.
	MaxEvents int64
	// Networking is the environment's network policy; the zero value is
	// unrestricted (the host network).
	Networking Networking
	// Limits bound each turn's processes; zero fields mean the defaults.
	Limits Limits
}

// Networking is an environment's network policy, in the official
// environment config shape.
type Networking struct {
	// Type is NetworkingUnrestricted (or empty) or NetworkingLimited.
	Type string
	// AllowedHosts, AllowPackageManagers and AllowMCPServers apply to a
	// limited network only; see the egress package for how hosts match.
	AllowedHosts         []string
	AllowPackageManagers bool
	AllowMCPServers      bool
}

// Values of Networking.Type.
const (
	NetworkingUnrestricted = "unrestricted"
	NetworkingLimited      = "limited"
)

// sandboxNetwork is the policy as the sandbox takes it.
func (e Environment) sandboxNetwork() sandbox.Network {
	return sandbox.Network{
		Limited:              e.Networking.Type == NetworkingLimited,
		AllowedHosts:         e.Networking.AllowedHosts,
		AllowPackageManagers: e.Networking.AllowPackageManagers,
		AllowMCPServers:      e.Networking.AllowMCPServers,
		Environment:          e.ID,
	}
}

// Vault names a file of KEY=VALUE lines whose values reach the harness as
// environment variables only. Exactly one of File and Credential is set.
type Vault struct {
	ID string
	// File is a path to a KEY=VALUE file.
	File string
	// Credential is a systemd credential name, read from
	// Config.CredentialsDir ($CREDENTIALS_DIRECTORY).
	Credential string
	// Hosts are the host names (or *.suffix wildcards) the vault's values
	// may be sent to; empty means any host the session's environment
	// allows.
	Hosts []string
	// Inject says where the proxy substitutes values: "header", "body";
	// empty means header only.
	Inject []string
	// Raw hands the harness the real values instead of placeholders
	// (local.vaults[].project: false): the opt-out for tools that need the
	// value itself, at the price of everything projection protects.
	Raw bool
}

// injects reports whether the vault's values go into headers and bodies.
func (v Vault) injects() (header, body bool) {
	if len(v.Inject) == 0 {
		return true, false
	}
	for _, where := range v.Inject {
		switch where {
		case "header":
			header = true
		case "body":
			body = true
		}
	}
	return header, body
}

// Config is the local backend's part of the daemon configuration. The zero
// value of every optional field means its default.
type Config struct {
	// Events, when set, receives the webhook events of session changes
	// (created, status, archived, deleted), appended in the change's own
	// transaction.
	Events EventSink

	// Index and Node are set in cluster mode (issue 26): every session's
	// record is copied, after each commit that changes its status, archive
	// or fields, into this namespace of the shared store, tagged with Node,
	// and sessions.list reads it (index.go).
	Index *store.Namespace
	Node  string
	// Catalog is the namespace (store.NamespaceCatalog) of the agents,
	// environments, vaults and credentials created through the API. In
	// cluster mode the daemon passes the shared store's, so every node
	// serves the same catalog; nil means the catalog namespace of the
	// store the sessions are in (one box).
	Catalog *store.Namespace

	Agents       []Agent
	Environments []Environment
	Vaults       []Vault

	// FilesDir holds the files that file resources name by file_id. Empty
	// means file resources are not available.
	FilesDir string
	// WorkspaceDir holds one workspace per session: WorkspaceDir/<session id>.
	WorkspaceDir string

	MaxConcurrentSessions int           // default 4; further runs queue
	WorkspaceRetention    time.Duration // default 7 days after a session ends
	// SessionRetention is how long a terminated or archived session, or an
	// idle one without activity, is kept before it is deleted with its
	// events and workspace; default 30 days.
	SessionRetention time.Duration
	GitBinary        string // default "git" from PATH
	// CredentialsDir is where systemd credentials live; default
	// $CREDENTIALS_DIRECTORY.
	CredentialsDir string
	// KillGracePeriod is how long a harness gets between SIGTERM and SIGKILL.
	KillGracePeriod time.Duration
	// Sandbox starts every harness process; nil means sandbox.None
	// (unconfined). The daemon builds it from local.sandbox.
	Sandbox sandbox.Sandbox
	// Sealer seals the secret_value of vault credentials created through
	// the API (the daemon's age keyring); nil refuses such credentials.
	Sealer Sealer
	// ClaudeBinary is the claude binary of agents created through the API
	// (local.claude_binary): a path or a name in PATH; default "claude".
	ClaudeBinary string
	// ClaudeEnv is added to the harness environment of agents created
	// through the API (local.claude_env): not secrets, which are in vaults.
	ClaudeEnv map[string]string
	// Projector is the egress proxy that substitutes projected vault
	// credentials; nil means none (a session with projected credentials
	// then fails, see checkProjection).
	Projector Projector
	// Disk, when set, says when the data dir's file system is below its
	// reserve (disk.min_free): turns that write are then stopped. nil
	// means no reserve.
	Disk DiskGuard

	Now    func() time.Time
	Logger *slog.Logger

	// resolve looks up repository hosts for the clone proxy; nil means the
	// system resolver. Tests set it to point names at their servers.
	resolve func(ctx context.Context, host string) ([]netip.Addr, error)
}

// ConfigError is an invalid config value named by its key, e.g.
// "local.agents[0].command" (the type every config error shares).
type ConfigError = configerr.Error

// Validate checks the configuration. Every problem is reported, each as a
// *ConfigError naming its key; use errors.As to pick them out.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &ConfigError{Key: key, Problem: fmt.Sprintf(format, args...)})
	}

	if strings.TrimSpace(c.WorkspaceDir) == "" {
		bad("local.workspace_dir", "is required")
	}
	if c.MaxConcurrentSessions < 0 {
		bad("local.max_concurrent_sessions", "must not be negative, got %d", c.MaxConcurrentSessions)
	}
	if c.WorkspaceRetention < 0 {
		bad("local.workspace_retention", "must not be negative, got %s", c.WorkspaceRetention)
	}
	if c.SessionRetention < 0 {
		bad("local.session_retention", "must not be negative, got %s", c.SessionRetention)
	}
	if c.KillGracePeriod < 0 {
		bad("local.kill_grace_period", "must not be negative, got %s", c.KillGracePeriod)
	}

	type agentKey struct {
		id      string
		version int64
	}
	seenAgents := map[agentKey]int{}
	for i, a := range c.Agents {
		key := fmt.Sprintf("local.agents[%d]", i)
		if err := checkName(a.ID); err != nil {
			bad(key+".id", "%v", err)
		}
		if a.Version < 0 {
			bad(key+".version", "must not be negative, got %d", a.Version)
		}
		switch {
		case a.ClaudeCode != nil && len(a.Command) > 0:
			bad(key+".command", "must not be set with harness: claude-code (the harness is the command)")
		case a.ClaudeCode != nil:
			var ce *claudecode.ConfigError
			if err := a.ClaudeCode.Validate(); errors.As(err, &ce) {
				bad(key+"."+ce.Key, "%s", ce.Message)
			}
		case len(a.Command) == 0 || strings.TrimSpace(a.Command[0]) == "":
			bad(key+".command", "must name a program (an argv list such as [\"./harness.sh\"]), or set harness: claude-code")
		}
		checkEnv(key+".env", a.Env, bad)
		for j, p := range a.ReadOnly {
			if !filepath.IsAbs(p) {
				bad(fmt.Sprintf("%s.read_only[%d]", key, j), "%q must be an absolute path (a relative one resolves next to the config file)", p)
			} else if _, err := os.Stat(p); err != nil {
				bad(fmt.Sprintf("%s.read_only[%d]", key, j), "%v", err)
			}
		}
		k := agentKey{a.ID, versionOrDefault(a.Version)}
		if j, dup := seenAgents[k]; dup {
			bad(key, "agent %q version %d is already declared by local.agents[%d]", a.ID, k.version, j)
		} else {
			seenAgents[k] = i
		}
	}

	checkEnv("local.claude_env", c.ClaudeEnv, bad)

	seenEnvs := map[string]int{}
	for i, e := range c.Environments {
		key := fmt.Sprintf("local.environments[%d]", i)
		if err := checkName(e.ID); err != nil {
			bad(key+".id", "%v", err)
		}
		if e.Timeout < 0 {
			bad(key+".timeout", "must not be negative, got %s", e.Timeout)
		}
		if e.MaxOutputBytes < 0 {
			bad(key+".max_output_bytes", "must not be negative, got %d", e.MaxOutputBytes)
		}
		if e.MaxEvents < 0 {
			bad(key+".max_events", "must not be negative, got %d", e.MaxEvents)
		}
		if e.Limits.WorkspaceBytes < -1 {
			bad(key+".limits.workspace_bytes", "must be a size in bytes, 0 for the default (%d) or -1 for no cap, got %d",
				DefaultWorkspaceBytes, e.Limits.WorkspaceBytes)
		}
		checkEnv(key+".env", e.Env, bad)
		e.Limits.validate(key+".limits", bad)
		switch e.Networking.Type {
		case "", NetworkingUnrestricted:
			// allowed_hosts of an unrestricted environment only lists the
			// internal addresses its repository clones may reach.
			if e.Networking.AllowPackageManagers || e.Networking.AllowMCPServers {
				bad(key+".networking", "allow_package_managers and allow_mcp_servers need type limited")
			}
		case NetworkingLimited:
		default:
			bad(key+".networking.type", "must be unrestricted or limited, got %q", e.Networking.Type)
		}
		for j, h := range e.Networking.AllowedHosts {
			if err := egress.CheckHost(h); err != nil {
				bad(fmt.Sprintf("%s.networking.allowed_hosts[%d]", key, j), "%v (want a host name, *.suffix or an IP, optionally with :port)", err)
			}
		}
		if j, dup := seenEnvs[e.ID]; dup && e.ID != "" {
			bad(key+".id", "environment %q is already declared by local.environments[%d]", e.ID, j)
		} else {
			seenEnvs[e.ID] = i
		}
	}

	seenVaults := map[string]int{}
	for i, v := range c.Vaults {
		key := fmt.Sprintf("local.vaults[%d]", i)
		if err := checkName(v.ID); err != nil {
			bad(key+".id", "%v", err)
		}
		switch {
		case v.File == "" && v.Credential == "":
			bad(key, "needs a file or a credential")
		case v.File != "" && v.Credential != "":
			bad(key, "has both a file and a credential; pick one")
		case v.Credential != "" && !isPlainFileName(v.Credential):
			bad(key+".credential", "%q is not a credential name (no slashes, not . or ..)", v.Credential)
		}
		for j, h := range v.Hosts {
			if err := checkCredentialHost(h); err != nil {
				bad(fmt.Sprintf("%s.hosts[%d]", key, j), "%v", err)
			}
		}
		for j, where := range v.Inject {
			if where != "header" && where != "body" {
				bad(fmt.Sprintf("%s.inject[%d]", key, j), "%q is not an injection location: header or body", where)
			}
		}
		if j, dup := seenVaults[v.ID]; dup && v.ID != "" {
			bad(key+".id", "vault %q is already declared by local.vaults[%d]", v.ID, j)
		} else {
			seenVaults[v.ID] = i
		}
	}
	return errors.Join(errs...)
}

// withDefaults returns c with every zero optional field set to its default.
func (c Config) withDefaults() Config {
	if c.MaxConcurrentSessions == 0 {
		c.MaxConcurrentSessions = DefaultMaxConcurrentSessions
	}
	if c.WorkspaceRetention == 0 {
		c.WorkspaceRetention = DefaultWorkspaceRetention
	}
	if c.GitBinary == "" {
		c.GitBinary = DefaultGitBinary
	}
	if c.CredentialsDir == "" {
		c.CredentialsDir = os.Getenv("CREDENTIALS_DIRECTORY")
	}
	if c.KillGracePeriod == 0 {
		c.KillGracePeriod = DefaultKillGracePeriod
	}
	if c.SessionRetention == 0 {
		c.SessionRetention = DefaultSessionRetention
	}
	if c.Sandbox == nil {
		c.Sandbox = sandbox.None{}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	agents := make([]Agent, len(c.Agents))
	for i, a := range c.Agents {
		a.Version = versionOrDefault(a.Version)
		agents[i] = a
	}
	c.Agents = agents
	envs := make([]Environment, len(c.Environments))
	for i, e := range c.Environments {
		if e.Timeout == 0 {
			e.Timeout = DefaultSessionTimeout
		}
		if e.MaxOutputBytes == 0 {
			e.MaxOutputBytes = DefaultMaxOutputBytes
		}
		if e.MaxEvents == 0 {
			e.MaxEvents = DefaultMaxEvents
		}
		e.Limits = e.Limits.withDefaults(c.MaxConcurrentSessions)
		envs[i] = e
	}
	c.Environments = envs
	return c
}

func versionOrDefault(v int64) int64 {
	if v == 0 {
		return 1
	}
	return v
}

// checkName accepts the ids users pick for agents, environments and vaults:
// printable, no whitespace or slashes, at most 128 bytes.
func checkName(id string) error {
	switch {
	case id == "":
		return errors.New("is required")
	case len(id) > 128:
		return fmt.Errorf("%q is longer than 128 bytes", id)
	}
	for _, r := range id {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '/' || r == '\\' {
			return fmt.Errorf("%q may not contain whitespace, control characters or slashes", id)
		}
	}
	return nil
}

func checkEnv(key string, env map[string]string, bad func(key, format string, args ...any)) {
	for k, v := range env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			bad(key, "%q is not an environment variable name", k)
		}
		if strings.ContainsRune(v, 0) {
			bad(key+"."+k, "value contains a NUL byte")
		}
	}
}

// isPlainFileName reports whether name is a single path element.
func isPlainFileName(name string) bool {
	return name != "" && name != "." && name != ".." &&
		!strings.ContainsAny(name, "/\\\x00")
}

// DiskGuard reports the data dir's file system below its reserve; see
// internal/diskspace.
type DiskGuard interface {
	// Err is nil while there is room, else an error saying how much is
	// free and what the reserve is.
	Err() error
	// Observe is told of a write error; ENOSPC makes it look again.
	Observe(err error)
}
