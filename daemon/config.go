// Package daemon owns configuration (viper), wiring and lifecycle: open the
// store, load the keyring, recover run intents, start the scheduler, start
// the listeners, tell systemd READY, and shut down in the reverse order. It
// must not contain API handlers or domain rules.
package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/internal/bytesize"
	"github.com/sandbox0/sandbox0d/internal/configerr"
	"github.com/sandbox0/sandbox0d/schedule"
	"github.com/sandbox0/sandbox0d/sessions/local/egress"
	"github.com/sandbox0/sandbox0d/sessions/upstream"
	"github.com/sandbox0/sandbox0d/webhooks"
)

// Config is the daemon configuration. Every key has a default so that
// env-only configuration works.
type Config struct {
	// ConfigFile is the file the configuration was read from ("" if none);
	// relative harness paths in it are resolved against its directory.
	ConfigFile string `mapstructure:"-"`
	// Warnings are problems that do not stop the daemon (SANDBOX0D_
	// variables that match no key); the daemon logs them at startup.
	Warnings        []string        `mapstructure:"-"`
	DataDir         string          `mapstructure:"data_dir"`
	Listen          string          `mapstructure:"listen"`
	Socket          string          `mapstructure:"socket"`
	IdentityFile    string          `mapstructure:"identity_file"`
	Backend         string          `mapstructure:"backend"`
	ShutdownTimeout time.Duration   `mapstructure:"shutdown_timeout"`
	Log             LogConfig       `mapstructure:"log"`
	Schedule        ScheduleConfig  `mapstructure:"schedule"`
	Upstream        UpstreamConfig  `mapstructure:"upstream"`
	Local           LocalConfig     `mapstructure:"local"`
	Auth            AuthConfig      `mapstructure:"auth"`
	TLS             TLSConfig       `mapstructure:"tls"`
	Runs            RunsConfig      `mapstructure:"runs"`
	Webhooks        webhooks.Config `mapstructure:"webhooks"`
	Debug           DebugConfig     `mapstructure:"debug"`
	Console         ConsoleConfig   `mapstructure:"console"`
	// MaxConnections caps the connections each API listener (the socket,
	// TCP) holds open; over it a new connection gets a 503 and is closed.
	// 0 means no cap.
	MaxConnections int        `mapstructure:"max_connections"`
	Disk           DiskConfig `mapstructure:"disk"`
	// DeploymentsDir is a directory of deployment files applied as the set
	// "default" at start (before the scheduler loads) and on SIGHUP; "" off.
	DeploymentsDir string `mapstructure:"deployments_dir"`
	// Store and Cluster: config_store.go.
	Store   StoreConfig   `mapstructure:"store"`
	Cluster ClusterConfig `mapstructure:"cluster"`
}

// DiskConfig keeps a reserve on the data dir's file system.
type DiskConfig struct {
	// MinFree is the reserve in bytes: below it, API writes answer 507 and
	// local turns that write stop, so what must still be recorded (the end
	// of those turns, run results) has room. 0 disables the check.
	MinFree int64 `mapstructure:"min_free"`
}

// ConsoleConfig configures the web console at /console/.
type ConsoleConfig struct {
	// Enabled serves the console on every listener (the socket trusted,
	// TCP behind a sign-in with an API key).
	Enabled bool `mapstructure:"enabled"`
	// AllowedHosts are the host names the console answers to besides
	// localhost and IP addresses (the Host check against DNS rebinding).
	AllowedHosts []string `mapstructure:"allowed_hosts"`
}

// DebugConfig holds diagnostics that are off by default.
type DebugConfig struct {
	// Pprof serves net/http/pprof under /admin/debug/pprof/ on the Unix
	// socket only (profiling the daemon under load; never on TCP).
	Pprof bool `mapstructure:"pprof"`
}

// AuthConfig lists API keys accepted on TCP besides the stored ones.
type AuthConfig struct {
	APIKeys           []string `mapstructure:"api_keys"`
	APIKeysFile       string   `mapstructure:"api_keys_file"`
	AllowPlaintextTCP bool     `mapstructure:"allow_plaintext_tcp"`
}

// TLSConfig enables TLS on the TCP listener.
type TLSConfig struct {
	Cert string `mapstructure:"cert"`
	Key  string `mapstructure:"key"`
}

// RunsConfig bounds stored runs.
type RunsConfig struct {
	Retention RetentionConfig `mapstructure:"retention"`
}

// RetentionConfig: runs beyond either limit are pruned in the background.
type RetentionConfig struct {
	MaxPerDeployment int           `mapstructure:"max_per_deployment"`
	MaxAge           time.Duration `mapstructure:"max_age"`
	Interval         time.Duration `mapstructure:"interval"`
}

// LogConfig selects log level and format.
type LogConfig struct {
	Level  string `mapstructure:"level"`  // debug, info, warn, error
	Format string `mapstructure:"format"` // text or json
}

// ScheduleConfig tunes the scheduler.
type ScheduleConfig struct {
	MisfireGrace time.Duration `mapstructure:"misfire_grace"`
	Jitter       time.Duration `mapstructure:"jitter"`
	Workers      int           `mapstructure:"workers"`
	// DSTPolicy is once (a fixed-time schedule fires exactly once per
	// local day) or literal (the hosted API's wall-clock matching, for
	// identical fire times on both); see schedule.DSTPolicy.
	DSTPolicy string `mapstructure:"dst_policy"`
}

// Policy returns the parsed schedule.dst_policy; Validate has checked it,
// and an empty value is the default, once.
func (s ScheduleConfig) Policy() schedule.DSTPolicy {
	p, _ := schedule.ParseDSTPolicy(s.DSTPolicy)
	return p
}

// UpstreamConfig configures the upstream session backend.
type UpstreamConfig struct {
	URL            string        `mapstructure:"url"`
	APIKey         string        `mapstructure:"api_key"`
	APIKeyFile     string        `mapstructure:"api_key_file"`
	RetryWindow    time.Duration `mapstructure:"retry_window"`
	MaxConcurrency int           `mapstructure:"max_concurrency"`
	RequestTimeout time.Duration `mapstructure:"request_timeout"`
	AllowPlaintext bool          `mapstructure:"allow_plaintext"`
	MaxProxyBody   int64         `mapstructure:"max_proxy_body"`
}

// LocalConfig configures the local session backend.
type LocalConfig struct {
	Agents                []LocalAgent       `mapstructure:"agents"`
	Environments          []LocalEnvironment `mapstructure:"environments"`
	Vaults                []LocalVault       `mapstructure:"vaults"`
	FilesDir              string             `mapstructure:"files_dir"`
	WorkspaceDir          string             `mapstructure:"workspace_dir"`
	MaxConcurrentSessions int                `mapstructure:"max_concurrent_sessions"`
	WorkspaceRetention    time.Duration      `mapstructure:"workspace_retention"`
	SessionRetention      time.Duration      `mapstructure:"session_retention"`
	GitBinary             string             `mapstructure:"git_binary"`
	// ClaudeBinary is the claude program of agents created through the API
	// (they run on the claude-code harness).
	ClaudeBinary string `mapstructure:"claude_binary"`
	// ClaudeEnv is added to the harness environment of agents created
	// through the API (not secrets: those belong in vaults).
	ClaudeEnv       map[string]string `mapstructure:"claude_env"`
	KillGracePeriod time.Duration     `mapstructure:"kill_grace_period"`
	CredentialsDir  string            `mapstructure:"credentials_dir"`
	// Sandbox is bubblewrap, none or auto (see sessions/local/sandbox).
	Sandbox string `mapstructure:"sandbox"`
	// Egress bounds what one session may hold open on the egress proxy of
	// limited networks.
	Egress LocalEgress `mapstructure:"egress"`
}

// LocalEgress bounds one session's connections to the egress proxy.
type LocalEgress struct {
	// MaxConnectionsPerSession caps the connections one session holds
	// open; 0 means no cap.
	MaxConnectionsPerSession int `mapstructure:"max_connections_per_session"`
	// HeaderTimeout is the time a connection has to send its CONNECT or
	// request header.
	HeaderTimeout time.Duration `mapstructure:"header_timeout"`
	// UpstreamCAFile adds PEM CA certificates to the system roots the
	// proxy verifies intercepted hosts against (a private CA, tests).
	UpstreamCAFile string `mapstructure:"upstream_ca_file"`
}

// LocalAgent declares an agent for the local backend: a harness command,
// or harness: claude-code with the Claude Code keys.
type LocalAgent struct {
	ID      string            `mapstructure:"id"`
	Version int64             `mapstructure:"version"`
	Command []string          `mapstructure:"command"`
	Env     map[string]string `mapstructure:"env"`
	// ReadOnly are host paths the harness may read inside the sandbox
	// beyond the system's (relative ones resolve next to the config file).
	ReadOnly []string `mapstructure:"read_only"`
	// Name and Description only describe the agent in the API's agent
	// objects (so do Model and System for a command harness).
	Name        string `mapstructure:"name"`
	Description string `mapstructure:"description"`

	// Harness is "command" (the default when command is set) or
	// "claude-code".
	Harness         string   `mapstructure:"harness"`
	Model           string   `mapstructure:"model"`
	System          string   `mapstructure:"system"`
	AppendSystem    string   `mapstructure:"append_system"`
	AllowedTools    []string `mapstructure:"allowed_tools"`
	DisallowedTools []string `mapstructure:"disallowed_tools"`
	MCPServers      string   `mapstructure:"mcp_servers"`
	MaxTurns        int      `mapstructure:"max_turns"`
	PermissionMode  string   `mapstructure:"permission_mode"`
	ClaudeBinary    string   `mapstructure:"claude_binary"`
}

// LocalEnvironment declares an environment for the local backend.
type LocalEnvironment struct {
	ID             string            `mapstructure:"id"`
	Env            map[string]string `mapstructure:"env"`
	Timeout        time.Duration     `mapstructure:"timeout"`
	MaxOutputBytes int64             `mapstructure:"max_output_bytes"`
	MaxEvents      int64             `mapstructure:"max_events"`
	Networking     LocalNetworking   `mapstructure:"networking"`
	Limits         LocalLimits       `mapstructure:"limits"`
}

// LocalLimits bound each turn of an environment's sessions; empty or zero
// means the default (see sessions/local.Limits).
type LocalLimits struct {
	// Memory is a size: bytes or a number with a unit ("512MiB", "2GiB").
	Memory    string  `mapstructure:"memory"`
	Processes int64   `mapstructure:"processes"`
	CPU       float64 `mapstructure:"cpu"`
	OpenFiles int64   `mapstructure:"open_files"`
	// WorkspaceBytes caps the disk the session's workspace uses; 0 means
	// local.DefaultWorkspaceBytes, -1 no cap.
	WorkspaceBytes int64 `mapstructure:"workspace_bytes"`
}

// LocalNetworking is an environment's network policy, in the official
// environment config shape.
type LocalNetworking struct {
	Type                 string   `mapstructure:"type"`
	AllowedHosts         []string `mapstructure:"allowed_hosts"`
	AllowPackageManagers bool     `mapstructure:"allow_package_managers"`
	AllowMCPServers      bool     `mapstructure:"allow_mcp_servers"`
}

// LocalVault declares a vault for the local backend.
type LocalVault struct {
	ID         string `mapstructure:"id"`
	File       string `mapstructure:"file"`
	Credential string `mapstructure:"credential"`
	// Hosts are the hosts the vault's values may be sent to (through the
	// egress proxy); empty: any host the environment allows.
	Hosts []string `mapstructure:"hosts"`
	// Inject is where the proxy substitutes them: header, body.
	Inject []string `mapstructure:"inject"`
	// Project false hands the harness the real values (the opt-out);
	// unset means true.
	Project *bool `mapstructure:"project"`
}

// Defaults: under systemd, the directories the unit's StateDirectory= and
// RuntimeDirectory= created (systemd passes them as $STATE_DIRECTORY and
// $RUNTIME_DIRECTORY); as root elsewhere, the FHS paths; as any other user,
// paths in the current directory so the first command works without
// privileges.
func defaultDataDir() string {
	if dir := firstPath(os.Getenv("STATE_DIRECTORY")); dir != "" {
		return dir
	}
	if os.Geteuid() == 0 {
		return "/var/lib/sandbox0d"
	}
	return "./sandbox0d-data"
}

// DefaultSocket is the daemon's socket path for this user.
func DefaultSocket() string {
	if dir := firstPath(os.Getenv("RUNTIME_DIRECTORY")); dir != "" {
		return filepath.Join(dir, "sandbox0d.sock")
	}
	if os.Geteuid() == 0 {
		return "/run/sandbox0d/sandbox0d.sock"
	}
	return "./sandbox0d.sock"
}

// firstPath returns the first of systemd's colon-separated directories.
func firstPath(list string) string {
	first, _, _ := strings.Cut(list, ":")
	return first
}

func setDefaults(v *viper.Viper) {
	v.SetDefault("data_dir", defaultDataDir())
	v.SetDefault("listen", "")
	v.SetDefault("socket", DefaultSocket())
	v.SetDefault("identity_file", "")
	v.SetDefault("backend", "")
	v.SetDefault("shutdown_timeout", 30*time.Second)
	v.SetDefault("log.level", "info")
	v.SetDefault("log.format", "text")
	v.SetDefault("schedule.misfire_grace", time.Minute)
	v.SetDefault("schedule.jitter", time.Duration(0))
	v.SetDefault("schedule.workers", deployments.DefaultWorkers)
	v.SetDefault("schedule.dst_policy", schedule.DSTOnce.String())
	v.SetDefault("upstream.url", "")
	v.SetDefault("upstream.api_key", "")
	v.SetDefault("upstream.api_key_file", "")
	v.SetDefault("upstream.retry_window", 2*time.Minute)
	v.SetDefault("upstream.max_concurrency", upstream.DefaultMaxConcurrency)
	v.SetDefault("upstream.request_timeout", 30*time.Second)
	v.SetDefault("upstream.max_proxy_body", int64(512<<20))
	v.SetDefault("upstream.allow_plaintext", false)
	v.SetDefault("local.files_dir", "")
	v.SetDefault("local.workspace_dir", "")
	v.SetDefault("local.max_concurrent_sessions", 4)
	v.SetDefault("local.workspace_retention", 7*24*time.Hour)
	v.SetDefault("local.session_retention", 30*24*time.Hour) // local.DefaultSessionRetention
	v.SetDefault("local.git_binary", "git")
	v.SetDefault("local.claude_binary", "claude")
	v.SetDefault("local.claude_env", map[string]string{})
	v.SetDefault("local.kill_grace_period", 10*time.Second)
	v.SetDefault("local.credentials_dir", "")
	v.SetDefault("local.sandbox", "auto")
	v.SetDefault("auth.api_keys", []string{})
	v.SetDefault("auth.api_keys_file", "")
	v.SetDefault("auth.allow_plaintext_tcp", false)
	v.SetDefault("tls.cert", "")
	v.SetDefault("tls.key", "")
	v.SetDefault("runs.retention.max_per_deployment", 1000)
	v.SetDefault("runs.retention.max_age", 90*24*time.Hour)
	v.SetDefault("runs.retention.interval", time.Hour)
	wh := webhooks.DefaultConfig()
	v.SetDefault("webhooks.endpoints", []any{})
	v.SetDefault("webhooks.organization_id", wh.OrganizationID)
	v.SetDefault("webhooks.workspace_id", wh.WorkspaceID)
	v.SetDefault("webhooks.retry_schedule", wh.RetrySchedule)
	v.SetDefault("webhooks.timeout", wh.Timeout)
	v.SetDefault("webhooks.retention", wh.Retention)
	v.SetDefault("webhooks.max_concurrency", wh.MaxConcurrency)
	v.SetDefault("webhooks.max_concurrency_per_endpoint", wh.MaxConcurrencyPerEndpoint)
	v.SetDefault("debug.pprof", false)
	v.SetDefault("console.enabled", true)
	v.SetDefault("console.allowed_hosts", []string{})
	v.SetDefault("max_connections", DefaultMaxConnections)
	v.SetDefault("deployments_dir", "")
	v.SetDefault("disk.min_free", DefaultDiskMinFree)
	v.SetDefault("local.egress.max_connections_per_session", egress.DefaultMaxConnectionsPerSession)
	v.SetDefault("local.egress.header_timeout", egress.DefaultHeaderTimeout)
	setStoreDefaults(v)
}

// Defaults of the pressure limits (issue 22): enough for any honest load,
// small enough that one client or session cannot take the daemon's files
// or the disk.
const (
	DefaultMaxConnections = 1024
	DefaultDiskMinFree    = int64(256 << 20)
)

// BindServeFlags declares the serve flags and binds them to config keys.
func BindServeFlags(fs *pflag.FlagSet, v *viper.Viper) {
	fs.String("config", "", "YAML config file (default /etc/sandbox0d/config.yaml if it exists)")
	fs.String("data-dir", defaultDataDir(), "directory holding the database and the age identity")
	fs.String("listen", "", "TCP address to serve on, e.g. 127.0.0.1:8080 (empty: no TCP)")
	fs.String("socket", DefaultSocket(), "Unix socket path to serve on (empty: no socket)")
	fs.String("identity-file", "", "age identity file (default <data-dir>/keys/identity.age.txt or the systemd credential)")
	fs.String("backend", "", "session backend: local, upstream or none (default: upstream when upstream.url is set, else local)")
	fs.String("log-level", "info", "log level: debug, info, warn, error")
	fs.String("tls-cert", "", "TLS certificate file for the TCP listener")
	fs.String("tls-key", "", "TLS private key file for the TCP listener")
	for flag, key := range serveFlagKeys {
		_ = v.BindPFlag(key, fs.Lookup(flag))
	}
}

// serveFlagKeys maps each serve flag to the config key it sets.
var serveFlagKeys = map[string]string{
	"data-dir": "data_dir", "listen": "listen", "socket": "socket", "identity-file": "identity_file",
	"backend": "backend", "log-level": "log.level", "tls-cert": "tls.cert", "tls-key": "tls.key",
}

// LoadConfig resolves configuration with precedence flags > env
// (SANDBOX0D_…) > file > defaults.
func LoadConfig(v *viper.Viper, configFile string) (Config, error) {
	setDefaults(v)
	v.SetEnvPrefix("SANDBOX0D")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_", "-", "_"))
	v.AutomaticEnv()
	// The documented short form for automation.
	_ = v.BindEnv("auth.api_keys", "SANDBOX0D_API_KEYS", "SANDBOX0D_AUTH_API_KEYS")
	if configFile == "" {
		configFile = os.Getenv("SANDBOX0D_CONFIG")
	}
	explicit := configFile != ""
	if !explicit {
		configFile = "/etc/sandbox0d/config.yaml"
	}
	v.SetConfigFile(configFile)
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		var notFound viper.ConfigFileNotFoundError
		if explicit || !(errors.As(err, &notFound) || errors.Is(err, os.ErrNotExist) || isNotExist(err)) {
			return Config{}, fmt.Errorf("config file %s: %w", configFile, err)
		}
	}
	used := v.ConfigFileUsed()
	if _, err := os.Stat(used); err != nil {
		used = ""
	}
	node, err := readConfigNode(used)
	if err != nil {
		return Config{}, fmt.Errorf("config file %s: %w", used, err)
	}
	if err := checkKnownKeys(node, used); err != nil {
		return Config{}, err
	}
	var cfg Config
	if err := v.Unmarshal(&cfg); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	restoreMapKeys(node, reflect.ValueOf(&cfg))
	cfg.ConfigFile = used
	resolveConfigPaths(&cfg, fileKeys(v, used))
	if stray := unknownEnv(os.Environ()); len(stray) > 0 {
		cfg.Warnings = append(cfg.Warnings, describeEnvWarning(stray))
	}
	if cfg.Backend == "" {
		cfg.Backend = "local"
		if cfg.Upstream.URL != "" {
			cfg.Backend = "upstream"
		}
	}
	return cfg, cfg.Validate()
}

// parseSize reads a size key; "" is 0 (the default).
func parseSize(s string) (int64, error) {
	if strings.TrimSpace(s) == "" {
		return 0, nil
	}
	return bytesize.Parse(s)
}

func isNotExist(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe) && errors.Is(pe.Err, os.ErrNotExist)
}

// ConfigError names the config key that is wrong (and the file, for an
// unknown key); it is the one type the backends' config errors share.
type ConfigError = configerr.Error

// Validate checks the configuration and names the offending key.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return &ConfigError{Key: "data_dir", Problem: "must be set"}
	}
	if err := c.Webhooks.Validate(); err != nil {
		var fe *webhooks.FieldError
		if errors.As(err, &fe) {
			return &ConfigError{Key: "webhooks." + fe.Key, Problem: fe.Message}
		}
		return err
	}
	if err := c.validateStore(); err != nil {
		return err
	}
	if c.Listen == "" && c.Socket == "" {
		return &ConfigError{Key: "listen", Problem: "at least one listener is required: set listen (TCP) or socket (Unix)"}
	}
	switch c.Backend {
	case "local", "upstream", "none":
	default:
		return &ConfigError{Key: "backend", Problem: fmt.Sprintf("must be local, upstream or none, got %q", c.Backend)}
	}
	for i, a := range c.Local.Agents {
		key := fmt.Sprintf("local.agents[%d]", i)
		switch a.Harness {
		case "", "command":
			for _, k := range []struct {
				key string
				set bool
			}{{"append_system", a.AppendSystem != ""}, {"allowed_tools", len(a.AllowedTools) > 0},
				{"disallowed_tools", len(a.DisallowedTools) > 0}, {"mcp_servers", a.MCPServers != ""},
				{"max_turns", a.MaxTurns != 0}, {"permission_mode", a.PermissionMode != ""},
				{"claude_binary", a.ClaudeBinary != ""}} {
				if k.set {
					return &ConfigError{Key: key + "." + k.key, Problem: "is a claude-code setting; set harness: claude-code or remove it"}
				}
			}
		case "claude-code":
		default:
			return &ConfigError{Key: key + ".harness", Problem: fmt.Sprintf("must be command or claude-code, got %q", a.Harness)}
		}
	}
	for i, e := range c.Local.Environments {
		if _, err := parseSize(e.Limits.Memory); err != nil {
			return &ConfigError{Key: fmt.Sprintf("local.environments[%d].limits.memory", i), Problem: err.Error()}
		}
	}
	if c.Backend == "upstream" && c.Upstream.URL == "" {
		return &ConfigError{Key: "upstream.url", Problem: "must be set when backend is upstream"}
	}
	if c.Schedule.MisfireGrace < 0 {
		return &ConfigError{Key: "schedule.misfire_grace", Problem: "must not be negative"}
	}
	if c.Schedule.Jitter < 0 {
		return &ConfigError{Key: "schedule.jitter", Problem: "must not be negative"}
	}
	if c.Schedule.Workers < 1 || c.Schedule.Workers > 1024 {
		return &ConfigError{Key: "schedule.workers", Problem: "must be between 1 and 1024"}
	}
	// Empty is the default (a Config built in code, or an empty value).
	if _, err := schedule.ParseDSTPolicy(c.Schedule.DSTPolicy); err != nil && c.Schedule.DSTPolicy != "" {
		return &ConfigError{Key: "schedule.dst_policy", Problem: err.Error()}
	}
	if c.ShutdownTimeout <= 0 {
		return &ConfigError{Key: "shutdown_timeout", Problem: "must be positive"}
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return &ConfigError{Key: "tls.cert", Problem: "tls.cert and tls.key must be set together"}
	}
	if c.Runs.Retention.MaxPerDeployment < 0 {
		return &ConfigError{Key: "runs.retention.max_per_deployment", Problem: "must not be negative (0 disables)"}
	}
	if c.Runs.Retention.MaxAge < 0 {
		return &ConfigError{Key: "runs.retention.max_age", Problem: "must not be negative (0 disables)"}
	}
	if c.Runs.Retention.Interval <= 0 {
		return &ConfigError{Key: "runs.retention.interval", Problem: "must be positive"}
	}
	if c.MaxConnections < 0 {
		return &ConfigError{Key: "max_connections", Problem: "must not be negative (0: no cap)"}
	}
	if c.Disk.MinFree < 0 {
		return &ConfigError{Key: "disk.min_free", Problem: "must not be negative (0 disables the reserve)"}
	}
	if c.Local.Egress.MaxConnectionsPerSession < 0 {
		return &ConfigError{Key: "local.egress.max_connections_per_session", Problem: "must not be negative (0: no cap)"}
	}
	if c.Local.Egress.HeaderTimeout < 0 {
		return &ConfigError{Key: "local.egress.header_timeout", Problem: "must not be negative (0: the default, 10s)"}
	}
	for i, e := range c.Local.Environments {
		if e.Limits.WorkspaceBytes < -1 {
			return &ConfigError{Key: fmt.Sprintf("local.environments[%d].limits.workspace_bytes", i),
				Problem: fmt.Sprintf("must be a size in bytes, 0 for the default (10 GiB) or -1 for no cap, got %d", e.Limits.WorkspaceBytes)}
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return &ConfigError{Key: "log.level", Problem: fmt.Sprintf("must be debug, info, warn or error, got %q", c.Log.Level)}
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return &ConfigError{Key: "log.format", Problem: fmt.Sprintf("must be text or json, got %q", c.Log.Format)}
	}
	return nil
}
