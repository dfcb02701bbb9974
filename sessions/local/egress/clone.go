package egress

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/sandbox0/sandbox0d/internal/ratelog"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
)

// CloneConfig configures ListenClone.
type CloneConfig struct {
	SessionID string
	// Network is the environment's policy. Limited: only allowed_hosts (and
	// what allow_package_managers / allow_mcp_servers add) are reachable.
	// Unrestricted: any host. Either way loopback, private, link-local,
	// CGNAT, unspecified and metadata addresses are refused unless an
	// allowed_hosts entry names that IP.
	Network sandbox.Network
	// Resolve looks a host name up; nil means net.DefaultResolver.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	Logger  *slog.Logger
}

// CloneProxy is a loopback HTTP/CONNECT proxy that one git run of the
// daemon goes through, so a repository URL (and every redirect git
// follows) is held to the environment's policy: the proxy resolves the
// name once, checks the addresses and dials the one it checked, which DNS
// rebinding cannot change. It answers only requests carrying its own
// random credential, so other local processes cannot borrow it.
type CloneProxy struct {
	l        *listener
	user     string
	password string

	mu      sync.Mutex
	refusal string
}

// ListenClone starts a clone proxy on 127.0.0.1; Close stops it.
func ListenClone(cfg CloneConfig) (*CloneProxy, error) {
	pol, err := compile(cfg.Network)
	if err != nil {
		return nil, err
	}
	pol.open = !cfg.Network.Limited
	p := &Proxy{resolve: cfg.Resolve, log: cfg.Logger, live: map[*listener]struct{}{}}
	if p.log == nil {
		p.log = slog.Default()
	}
	// Denials of a clone log like the harness proxy's, rate-limited.
	p.warn = &ratelog.Limiter{Logger: p.log, Every: logEvery}
	if p.resolve == nil {
		p.resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("clone proxy: %w", err)
	}
	var secret [16]byte
	_, _ = rand.Read(secret[:])
	c := &CloneProxy{user: "sandbox0d", password: hex.EncodeToString(secret[:])}
	c.l = &listener{p: p, sessionID: cfg.SessionID, pol: pol, ln: ln, tunnels: map[net.Conn]struct{}{},
		refused: c.hear}
	c.l.srv = &http.Server{Handler: http.HandlerFunc(c.serve), ReadHeaderTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug)}
	go func() { _ = c.l.srv.Serve(ln) }()
	return c, nil
}

// URL is the proxy for git's http.proxy, credential included; pass it in
// git's environment (GIT_CONFIG_*), not its argv.
func (c *CloneProxy) URL() string {
	return "http://" + c.user + ":" + c.password + "@" + c.l.ln.Addr().String()
}

// Close stops the proxy and every connection through it.
func (c *CloneProxy) Close() { c.l.close() }

// Refusal is the last reason the proxy refused or could not reach a
// destination, "" if it never did.
func (c *CloneProxy) Refusal() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refusal
}

func (c *CloneProxy) hear(reason string) {
	c.mu.Lock()
	c.refusal = reason
	c.mu.Unlock()
}

// ErrRefused marks a repository URL the policy refuses.
var ErrRefused = errors.New("refused by the network policy")

// Check decides rawURL's host before git runs, so a refused repository is
// never contacted and its refusal reads as the policy's words. An error
// wrapping ErrRefused is a refusal; other errors (resolution) leave the
// decision to the proxy.
func (c *CloneProxy) Check(ctx context.Context, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	port := 443
	if u.Scheme == "http" {
		port = 80
	}
	t, err := parseTarget(u.Host, port)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRefused, err)
	}
	_, err = c.l.check(ctx, t)
	var d *denial
	if errors.As(err, &d) {
		reason := fmt.Sprintf("%s denied by the network policy of environment %s (networking type %s): %s",
			net.JoinHostPort(t.host, fmt.Sprint(t.port)), c.l.pol.environment, c.l.pol.networking(), d.reason)
		c.hear(reason)
		return fmt.Errorf("%w: %s", ErrRefused, reason)
	}
	return err
}

// serve admits requests that carry the proxy's credential.
func (c *CloneProxy) serve(w http.ResponseWriter, r *http.Request) {
	if !c.authorized(r.Header.Get("Proxy-Authorization")) {
		w.Header().Set("Proxy-Authenticate", `Basic realm="sandbox0d clone proxy"`)
		http.Error(w, "sandbox0d clone proxy: proxy authentication required", http.StatusProxyAuthRequired)
		return
	}
	c.l.ServeHTTP(w, r)
}

func (c *CloneProxy) authorized(header string) bool {
	encoded, ok := strings.CutPrefix(header, "Basic ")
	if !ok {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
	if err != nil {
		return false
	}
	want := c.user + ":" + c.password
	return subtle.ConstantTimeCompare(raw, []byte(want)) == 1
}
