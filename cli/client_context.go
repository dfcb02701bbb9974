package cli

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sandbox0/sandbox0d/daemon"
)

// Environment variables the client commands read.
const (
	envAddr   = "SANDBOX0D_ADDR"
	envAPIKey = "SANDBOX0D_API_KEY"
	// envSocket mirrors the daemon's own setting, so one exported value
	// points both the daemon and the client at the same socket.
	envSocket = "SANDBOX0D_SOCKET"
)

// clientDeps is what the client commands take from the outside world. It is
// injected so tests get a fixed clock and a controlled environment.
type clientDeps struct {
	now    func() time.Time
	getenv func(string) string
}

func defaultClientDeps() clientDeps {
	return clientDeps{now: time.Now, getenv: os.Getenv}
}

// commandContext is shared by every client command: the global flags, the
// clock and the environment.
type commandContext struct {
	clientDeps
	socket string
	addr   string
	json   bool
}

// registerClientCommands adds the global client flags and every command that
// talks to a running daemon (or previews schedules offline) to root.
func registerClientCommands(root *cobra.Command, deps clientDeps) {
	cc := &commandContext{clientDeps: deps}
	flags := root.PersistentFlags()
	flags.StringVar(&cc.socket, "socket", daemon.DefaultSocket(),
		"daemon Unix socket (env "+envSocket+")")
	flags.StringVar(&cc.addr, "addr", "",
		"daemon base URL, e.g. http://127.0.0.1:8080; talks TCP instead of the socket and sends "+envAPIKey+" (env "+envAddr+")")
	flags.BoolVar(&cc.json, "json", false, "print the API's JSON instead of tables")
	root.AddCommand(
		newDeploymentsCommand(cc),
		newRunsCommand(cc),
		newCronCommand(cc),
		newBackupCommand(cc),
		newAPIKeysCommand(cc),
		newWebhooksCommand(cc),
		newKeysCommand(cc),
		newCompactCommand(),
	)
}

// endpoint says where the daemon is: a TCP base URL, or else the socket.
type endpoint struct {
	baseURL string // "" when using the socket
	socket  string
	apiKey  string
}

func (e endpoint) viaSocket() bool { return e.baseURL == "" }

// resolveEndpoint applies flag > environment > default for --addr and
// --socket. A flag counts as given only when it was set on the command line.
func (cc *commandContext) resolveEndpoint(cmd *cobra.Command) (endpoint, error) {
	addr := cc.addr
	if !cmd.Flags().Changed("addr") {
		addr = cc.getenv(envAddr)
	}
	if addr != "" {
		base, err := normalizeBaseURL(addr)
		if err != nil {
			return endpoint{}, err
		}
		return endpoint{baseURL: base, apiKey: cc.getenv(envAPIKey)}, nil
	}
	socket := cc.socket
	if !cmd.Flags().Changed("socket") {
		if s := cc.getenv(envSocket); s != "" {
			socket = s
		}
	}
	if socket == "" {
		return endpoint{}, fmt.Errorf("--socket: no socket path given; pass --socket PATH or --addr URL")
	}
	return endpoint{socket: socket}, nil
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
