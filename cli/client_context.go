package cli

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/sandbox0/sandbox0d/daemon"
)

// Environment variables the client commands read.
const (
	envAddr   = "SANDBOX0D_ADDR"
	envAPIKey = "SANDBOX0D_API_KEY"
	// envSocket mirrors the daemon's own setting, so one exported value
	// points both the daemon and the client at the same socket.
	envSocket = "SANDBOX0D_SOCKET"
	// envConfig names the daemon's config file, as it does for serve.
	envConfig = "SANDBOX0D_CONFIG"
	envListen = "SANDBOX0D_LISTEN"
)

// systemConfigFile is the config file serve reads when none is named.
const systemConfigFile = "/etc/sandbox0d/config.yaml"

// quickstartSocket is where a daemon started from the repository with
// examples/local.yaml listens, whoever runs it.
const quickstartSocket = "./sandbox0d.sock"

// clientDeps is what the client commands take from the outside world. It is
// injected so tests get a fixed clock and a controlled environment.
type clientDeps struct {
	now    func() time.Time
	getenv func(string) string
	// defaultSocket is the daemon's default socket for this user;
	// systemConfig the config file serve reads by default.
	defaultSocket func() string
	systemConfig  string
}

func defaultClientDeps() clientDeps {
	return clientDeps{now: time.Now, getenv: os.Getenv, defaultSocket: daemon.DefaultSocket, systemConfig: systemConfigFile}
}

// commandContext is shared by every client command: the global flags, the
// clock and the environment.
type commandContext struct {
	clientDeps
	socket string
	addr   string
	config string
	json   bool
}

// registerClientCommands adds the global client flags and every command that
// talks to a running daemon (or previews schedules offline) to root.
func registerClientCommands(root *cobra.Command, deps clientDeps) {
	cc := &commandContext{clientDeps: deps}
	flags := root.PersistentFlags()
	flags.StringVar(&cc.socket, "socket", "",
		"daemon Unix socket (env "+envSocket+"; default: the one in --config, else "+deps.defaultSocket()+", else "+quickstartSocket+")")
	flags.StringVar(&cc.config, "config", "",
		"the daemon's config file, to find its socket or listen address (env "+envConfig+"; default "+deps.systemConfig+" if it exists)")
	flags.StringVar(&cc.addr, "addr", "",
		"daemon base URL, e.g. http://127.0.0.1:8080; talks TCP instead of the socket and sends "+envAPIKey+" (env "+envAddr+")")
	flags.BoolVar(&cc.json, "json", false, "print the API's JSON instead of tables")
	root.AddCommand(
		newDeploymentsCommand(cc),
		newApplyCommand(cc),
		newRunsCommand(cc),
		newSessionsCommand(cc),
		newCronCommand(cc),
		newBackupCommand(cc),
		newAPIKeysCommand(cc),
		newWebhooksCommand(cc),
		newKeysCommand(cc),
		newCompactCommand(),
		newMigrateCommand(cc),
		newStatusCommand(cc),
		newClusterCommand(cc),
	)
	cc.registerCompletions(root)
}

// endpoint says where the daemon is: a TCP base URL, or else the socket.
type endpoint struct {
	baseURL string // "" when using the socket
	socket  string
	apiKey  string
	// how says where the address came from, for errors ("--socket",
	// "socket in examples/local.yaml", …).
	how string
}

func (e endpoint) viaSocket() bool { return e.baseURL == "" }

// resolveEndpoint finds the daemon the way it was started. Precedence,
// highest first: --addr, $SANDBOX0D_ADDR, --socket, $SANDBOX0D_SOCKET, then
// the daemon's config file (--config, $SANDBOX0D_CONFIG, else the system
// one if it exists): its socket, or its listen address when it has no
// socket; without a config, the default socket for this user, else
// ./sandbox0d.sock when it exists. A flag counts as given only when it was
// set on the command line.
func (cc *commandContext) resolveEndpoint(cmd *cobra.Command) (endpoint, error) {
	addr := cc.addr
	how := "--addr"
	if !cmd.Flags().Changed("addr") {
		addr, how = cc.getenv(envAddr), envAddr
	}
	if addr != "" {
		base, err := normalizeBaseURL(addr)
		if err != nil {
			return endpoint{}, err
		}
		return endpoint{baseURL: base, apiKey: cc.getenv(envAPIKey), how: how}, nil
	}
	if cmd.Flags().Changed("socket") {
		if cc.socket == "" {
			return endpoint{}, fmt.Errorf("--socket: no socket path given; pass --socket PATH or --addr URL")
		}
		return endpoint{socket: cc.socket, how: "--socket"}, nil
	}
	if s := cc.getenv(envSocket); s != "" {
		return endpoint{socket: s, how: envSocket}, nil
	}
	file, explicit := cc.config, cmd.Flags().Changed("config")
	if !explicit {
		if file = cc.getenv(envConfig); file != "" {
			explicit = true
		} else if _, err := os.Stat(cc.systemConfig); err == nil {
			file = cc.systemConfig
		}
	}
	if file != "" {
		ep, err := cc.endpointFromConfig(file)
		if err != nil && explicit {
			return endpoint{}, err
		}
		if err == nil {
			return ep, nil
		}
		// An unreadable system config (mode 0640, another user) is not
		// this user's: fall through to the defaults.
	}
	def := cc.defaultSocket()
	tried := []string{def + " (the default socket)"}
	if fileExists(def) {
		return endpoint{socket: def, how: "the default socket"}, nil
	}
	if def != quickstartSocket {
		tried = append(tried, quickstartSocket+" (the quickstart's)")
		if fileExists(quickstartSocket) {
			return endpoint{socket: quickstartSocket, how: "the quickstart's socket"}, nil
		}
	}
	return endpoint{}, fmt.Errorf("no sandbox0d socket found: tried %s; pass --config FILE (the daemon's config), --socket PATH or --addr URL",
		strings.Join(tried, ", "))
}

// endpointFromConfig reads the socket and listen keys of the daemon's config
// file, as the daemon would (environment over file, defaults where unset).
func (cc *commandContext) endpointFromConfig(file string) (endpoint, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return endpoint{}, fmt.Errorf("--config: %w", err)
	}
	var cfg struct {
		Socket *string `yaml:"socket"`
		Listen string  `yaml:"listen"`
		TLS    struct {
			Cert string `yaml:"cert"`
		} `yaml:"tls"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return endpoint{}, fmt.Errorf("--config: %s is not valid YAML: %w", file, err)
	}
	socket := cc.defaultSocket()
	if cfg.Socket != nil {
		socket = *cfg.Socket
		// The daemon resolves a relative path of its config file next to
		// that file (daemon.resolveConfigPaths); so does the client, from
		// whatever directory it runs in.
		if socket != "" && !filepath.IsAbs(socket) {
			socket = filepath.Join(filepath.Dir(file), socket)
		}
	}
	listen := cfg.Listen
	if l := cc.getenv(envListen); l != "" {
		listen = l
	}
	if socket != "" {
		return endpoint{socket: socket, how: "the socket in " + file}, nil
	}
	if listen == "" {
		return endpoint{}, fmt.Errorf("--config: %s sets neither socket nor listen", file)
	}
	scheme := "http"
	if cfg.TLS.Cert != "" || cc.getenv("SANDBOX0D_TLS_CERT") != "" {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return endpoint{}, fmt.Errorf("--config: listen %q in %s: %w", listen, file, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1" // a wildcard listener answers on loopback
	}
	return endpoint{baseURL: scheme + "://" + net.JoinHostPort(host, port), apiKey: cc.getenv(envAPIKey),
		how: "listen in " + file}, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func normalizeBaseURL(addr string) (string, error) {
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--addr: %q must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:8080", addr)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("--addr: %q must not carry a query or fragment", addr)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// client returns an API client for the resolved endpoint.
func (cc *commandContext) client(cmd *cobra.Command) (*apiClient, error) {
	ep, err := cc.resolveEndpoint(cmd)
	if err != nil {
		return nil, err
	}
	return newAPIClient(ep), nil
}
