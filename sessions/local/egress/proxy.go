// Package egress is the HTTP/HTTPS proxy that is the only way out of a
// sandbox whose environment has a limited network. The daemon serves one
// Unix socket per sandboxed process; the socket is mounted into the sandbox
// and a forwarder there relays the harness's loopback proxy connections to
// it, so the socket itself says which session and policy a connection
// belongs to.
//
// The proxy resolves names itself and dials the address it checked (no
// second lookup an attacker could rebind). A destination is allowed when
// the name or IP as the client sent it matches an allowed_hosts entry (or a
// package-manager registry when allow_package_managers is set) and none of
// the addresses it would connect to is loopback, private or link-local,
// unless that address is listed explicitly as an IP entry. The harness of
// an unrestricted session whose credentials are projected gets an open
// socket instead: any destination, internal addresses only where
// allowed_hosts or the credentials' hosts name them (compileHarness).
package egress

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandbox0/sandbox0d/internal/connlimit"
	"github.com/sandbox0/sandbox0d/internal/ratelog"
	"github.com/sandbox0/sandbox0d/sessions/local/projection"
	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
)

// Decisions, the label values of sandbox0d_sandbox_egress_total.
const (
	DecisionAllowed = "allowed"
	DecisionDenied  = "denied"
	// DecisionRefused is a connection over the session's connection cap.
	DecisionRefused = "refused"
)

const dialTimeout = 15 * time.Second

// Defaults of the limits a session's connections are held to.
const (
	// DefaultMaxConnectionsPerSession is local.egress.max_connections_per_session.
	// A busy package install opens tens of connections; a session holding
	// hundreds is broken or hostile, and each costs the daemon two files.
	DefaultMaxConnectionsPerSession = 256
	// DefaultHeaderTimeout is local.egress.header_timeout: the time a
	// connection has to send its whole CONNECT or request header, and to
	// start the next request on a kept-alive connection.
	DefaultHeaderTimeout = 10 * time.Second
	// logEvery bounds the WARN lines of one session's denials and refusals.
	logEvery = 10 * time.Second
)

// Config configures New.
type Config struct {
	// MaxConnectionsPerSession caps the connections one session holds open
	// to the proxy (across all its sockets); over it a new connection gets a
	// 503 and is closed at once. 0 means DefaultMaxConnectionsPerSession;
	// negative means no cap.
	MaxConnectionsPerSession int
	// HeaderTimeout is how long a connection may take to send its request
	// header; 0 means DefaultHeaderTimeout.
	HeaderTimeout time.Duration
	// Now is the clock of the log rate limit; nil means time.Now.
	Now func() time.Time
	// Dir holds the sockets; empty means a fresh private directory under
	// the system temp dir.
	Dir string
	// Resolve looks a host name up; nil means net.DefaultResolver.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	Logger  *slog.Logger
	// CA terminates TLS for hosts that have a scoped credential (see
	// Project); nil means HTTPS is never intercepted and a CONNECT to such
	// a host is refused.
	CA *CA
	// UpstreamRoots verify the real hosts behind intercepted connections;
	// nil means the system roots.
	UpstreamRoots *x509.CertPool
	// MaxBodyBytes bounds the request bodies searched for placeholders; 0
	// means DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// Proxy serves the egress sockets. It implements sandbox.Egress.
type Proxy struct {
	dir     string
	ownDir  bool
	resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	log     *slog.Logger
	// warn bounds the WARN lines one session can cause (denials, refusals).
	warn          *ratelog.Limiter
	maxConns      int
	headerTimeout time.Duration
	ca            *CA
	upstreamRoots *x509.CertPool
	maxBody       int64

	allowed, denied, refused atomic.Uint64

	mu       sync.Mutex
	closed   bool
	live     map[*listener]struct{}
	sessions map[string]*sessionConns // the connection cap, shared by a session's sockets
	// projections are the sessions' credentials, by session id (Project).
	projections map[string]*projection.Session
}

// sessionConns is one session's connection cap and how many of its
// sockets share it.
type sessionConns struct {
	gate    *connlimit.Gate
	sockets int
}

var _ sandbox.Egress = (*Proxy)(nil)

// New creates the proxy; Close stops it.
func New(cfg Config) (*Proxy, error) {
	p := &Proxy{dir: cfg.Dir, resolve: cfg.Resolve, log: cfg.Logger, live: map[*listener]struct{}{},
		sessions: map[string]*sessionConns{}, maxConns: cfg.MaxConnectionsPerSession, headerTimeout: cfg.HeaderTimeout,
		ca: cfg.CA, upstreamRoots: cfg.UpstreamRoots, maxBody: cfg.MaxBodyBytes, projections: map[string]*projection.Session{}}
	if p.maxBody <= 0 {
		p.maxBody = DefaultMaxBodyBytes
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	p.warn = &ratelog.Limiter{Logger: p.log, Every: logEvery, Now: cfg.Now}
	if p.maxConns == 0 {
		p.maxConns = DefaultMaxConnectionsPerSession
	}
	if p.headerTimeout <= 0 {
		p.headerTimeout = DefaultHeaderTimeout
	}
	if p.resolve == nil {
		p.resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if p.dir == "" {
		dir, err := os.MkdirTemp("", "sandbox0d-egress-")
		if err != nil {
			return nil, fmt.Errorf("egress proxy: %w", err)
		}
		p.dir, p.ownDir = dir, true
	} else if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return nil, fmt.Errorf("egress proxy: %w", err)
	}
	return p, nil
}

// Dir is the directory holding the sockets; sandboxes hide it.
func (p *Proxy) Dir() string { return p.dir }

// Counts returns how many connections were allowed and denied so far.
func (p *Proxy) Counts() (allowed, denied uint64) { return p.allowed.Load(), p.denied.Load() }

// Refused returns how many connections were refused over a session's
// connection cap so far.
func (p *Proxy) Refused() uint64 { return p.refused.Load() }

// sessionGateLocked returns the session's connection cap, shared by all
// its sockets; each socket gives it back with dropSession. Callers hold
// p.mu.
func (p *Proxy) sessionGateLocked(sessionID string) *connlimit.Gate {
	sc, ok := p.sessions[sessionID]
	if !ok {
		sc = &sessionConns{gate: connlimit.NewGate(p.maxConns)}
		p.sessions[sessionID] = sc
	}
	sc.sockets++
	return sc.gate
}

func (p *Proxy) dropSession(sessionID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if sc, ok := p.sessions[sessionID]; ok {
		if sc.sockets--; sc.sockets <= 0 {
			delete(p.sessions, sessionID)
		}
	}
}

// Close stops every socket and removes the proxy's own directory.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	live := make([]*listener, 0, len(p.live))
	for l := range p.live {
		live = append(live, l)
	}
	p.mu.Unlock()
	for _, l := range live {
		l.close()
	}
	if p.ownDir {
		return os.RemoveAll(p.dir)
	}
	return nil
}

// policy is a parsed network policy. A limited one allows only what its
// rules match; an open one (unrestricted: the daemon's own clones, and the
// harness of a session whose credentials are projected) allows any
// destination. All refuse internal addresses their rules do not list as
// IPs; a proxied harness's policy (namedInternal) also lets a rule naming
// the host reach them, since its rules are the operator's allowed_hosts
// and the hosts the session's credentials are scoped to.
type policy struct {
	rules       []rule
	environment string
	open        bool
	// namedInternal: an internal address is reachable when a rule matches
	// the destination as sent, by name or IP (not only an IP rule).
	namedInternal bool
}

// networking is the policy's networking.type, for messages.
func (pol policy) networking() string {
	if pol.open {
		return "unrestricted"
	}
	return "limited"
}

func compile(n sandbox.Network) (policy, error) {
	pol := policy{environment: n.Environment}
	hosts := append([]string(nil), n.AllowedHosts...)
	if n.AllowPackageManagers {
		hosts = append(hosts, PackageManagerHosts...)
	}
	if n.AllowMCPServers {
		hosts = append(hosts, n.MCPServerHosts...)
	}
	for i, h := range hosts {
		r, err := parseRule(h)
		if err != nil {
			return pol, fmt.Errorf("allowed_hosts[%d]: %v", i, err)
		}
		pol.rules = append(pol.rules, r)
	}
	return pol, nil
}

// compileHarness is the policy of a harness socket: the environment's, or
// for a Proxied unrestricted network an open one whose internal addresses
// are those its allowed_hosts or the credentials' hosts name. A limited
// policy never takes the credentials' hosts: what it allows is
// allowed_hosts alone.
func compileHarness(n sandbox.Network) (policy, error) {
	pol, err := compile(n)
	if err != nil || n.Limited || !n.Proxied {
		return pol, err
	}
	pol.open, pol.namedInternal = true, true
	for i, h := range n.CredentialHosts {
		r, err := parseRule(h)
		if err != nil {
			return pol, fmt.Errorf("credential hosts[%d]: %v", i, err)
		}
		pol.rules = append(pol.rules, r)
	}
	return pol, nil
}

// listener is one socket: one sandboxed process of one session.
type listener struct {
	p         *Proxy
	sessionID string
	pol       policy
	ln        net.Listener
	path      string
	srv       *http.Server
	once      sync.Once

	mu      sync.Mutex
	tunnels map[net.Conn]struct{} // hijacked connections, closed with the listener
	closed  bool

	// refused, when set, hears every destination refused or unreachable
	// (the daemon's clones report it instead of git's words).
	refused func(reason string)
}

// track registers a hijacked connection; false once the listener closed.
func (l *listener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.tunnels[c] = struct{}{}
	return true
}

func (l *listener) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.tunnels, c)
	l.mu.Unlock()
}

// Listen implements sandbox.Egress: a socket served with the session's
// policy until release.
func (p *Proxy) Listen(sessionID string, n sandbox.Network) (string, func(), error) {
	pol, err := compileHarness(n)
	if err != nil {
		return "", nil, err
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	path := filepath.Join(p.dir, hex.EncodeToString(rnd[:])+".sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		return "", nil, err
	}
	l := &listener{p: p, sessionID: sessionID, pol: pol, path: path, tunnels: map[net.Conn]struct{}{}}
	// A connection has headerTimeout to say where it goes, and as long
	// again to start its next request; a tunnel, once open, lasts as long
	// as both ends keep it.
	l.srv = &http.Server{Handler: l, ReadHeaderTimeout: p.headerTimeout, IdleTimeout: p.headerTimeout,
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug)}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		ln.Close()
		return "", nil, errors.New("egress proxy is closed")
	}
	p.live[l] = struct{}{}
	gate := p.sessionGateLocked(sessionID)
	p.mu.Unlock()
	l.ln = connlimit.Wrap(ln, connlimit.Config{
		Gate: gate, Name: "egress", Log: p.warn,
		Refuse: func(c net.Conn) { l.refuse(c, gate.Max()) },
		Refused: func() {
			p.refused.Add(1)
			p.warn.Log(slog.LevelWarn, "refused:"+sessionID, "egress connection refused: the session is at its connection cap",
				"session_id", sessionID, "environment", pol.environment, "max_connections_per_session", gate.Max())
		},
	})
	go func() { _ = l.srv.Serve(l.ln) }()
	return path, l.close, nil
}

func (l *listener) close() {
	l.once.Do(func() {
		_ = l.srv.Close()
		l.mu.Lock()
		l.closed = true
		for c := range l.tunnels {
			c.Close()
		}
		l.mu.Unlock()
		_ = os.Remove(l.path)
		l.p.mu.Lock()
		delete(l.p.live, l)
		l.p.mu.Unlock()
		l.p.dropSession(l.sessionID)
	})
}

// refuse answers a connection over the session's cap; connlimit closes it.
func (l *listener) refuse(c net.Conn, max int) {
	body := fmt.Sprintf("sandbox0d egress proxy: session %s already has %d connections open, the most local.egress.max_connections_per_session allows; close some and retry\n",
		l.sessionID, max)
	_, _ = fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// denial is why a destination was refused.
type denial struct{ reason string }

func (d *denial) Error() string { return d.reason }

// check decides a destination and returns the addresses it may be dialed
// at, in resolver order.
func (l *listener) check(ctx context.Context, t target) ([]netip.Addr, error) {
	matched := false
	for _, r := range l.pol.rules {
		if r.matches(t) {
			matched = true
			break
		}
	}
	if !matched && !l.pol.open {
		return nil, &denial{fmt.Sprintf("%s is not in allowed_hosts", net.JoinHostPort(t.host, strconv.Itoa(t.port)))}
	}
	addrs := []netip.Addr{t.ip}
	if !t.ip.IsValid() {
		ctx, cancel := context.WithTimeout(ctx, dialTimeout)
		defer cancel()
		found, err := l.p.resolve(ctx, t.host)
		if err != nil {
			return nil, fmt.Errorf("resolving %s: %w", t.host, err)
		}
		addrs = found
	}
	var ok []netip.Addr
	var refused netip.Addr
	named := matched && l.pol.namedInternal
	for _, a := range addrs {
		a = a.Unmap()
		if internal(a) && !named && !listsIP(l.pol.rules, a, t.port) {
			refused = a
			continue
		}
		ok = append(ok, a)
	}
	if len(ok) == 0 {
		if refused.IsValid() {
			way := "only an allowed_hosts entry naming that IP allows it"
			if l.pol.namedInternal {
				way = "only an allowed_hosts entry of the environment or a host one of the session's credentials is scoped to, naming this host or IP, allows it"
			}
			return nil, &denial{fmt.Sprintf("%s resolves to %s, a loopback, private or link-local address; %s", t.host, refused, way)}
		}
		return nil, fmt.Errorf("%s has no address", t.host)
	}
	return ok, nil
}

func (l *listener) dial(ctx context.Context, addrs []netip.Addr, port int) (net.Conn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	var firstErr error
	for _, a := range addrs {
		c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return c, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// ServeHTTP handles CONNECT (any TCP, usually TLS) and absolute-URI plain
// HTTP requests; nothing else is a proxy request.
func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var t target
	var err error
	switch {
	case r.Method == http.MethodConnect:
		t, err = parseTarget(r.Host, 0)
	case r.URL.IsAbs() && r.URL.Scheme == "http":
		t, err = parseTarget(r.URL.Host, 80)
	case r.URL.IsAbs():
		http.Error(w, "sandbox0d egress proxy: only http:// URLs are proxied as requests; use CONNECT for "+r.URL.Scheme, http.StatusBadRequest)
		return
	default:
		http.Error(w, "sandbox0d egress proxy: not a proxy request", http.StatusBadRequest)
		return
	}
	if err != nil {
		l.deny(w, r.Host, err.Error())
		return
	}
	addrs, err := l.check(r.Context(), t)
	var d *denial
	if errors.As(err, &d) {
		l.deny(w, net.JoinHostPort(t.host, strconv.Itoa(t.port)), d.reason)
		return
	} else if err != nil {
		l.p.log.Info("egress: destination unreachable", "session_id", l.sessionID, "host", t.host, "error", err)
		l.hear(err.Error())
		http.Error(w, "sandbox0d egress proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	// A host one of the session's credentials is scoped to is seen in
	// clear: CONNECT is terminated here, plain HTTP rewritten.
	sess := l.p.projection(l.sessionID)
	scoped := sess != nil && sess.Scoped(t.host)
	if scoped && r.Method == http.MethodConnect && l.p.ca == nil {
		l.p.log.Warn("egress: a credential is scoped to this host but the proxy has no CA to intercept with",
			"session_id", l.sessionID, "host", t.host)
		http.Error(w, "sandbox0d egress proxy: cannot project credentials to "+t.host+": the daemon has no egress CA", http.StatusBadGateway)
		return
	}
	upstream, err := l.dial(r.Context(), addrs, t.port)
	if err != nil {
		l.p.log.Info("egress: connecting failed", "session_id", l.sessionID, "host", t.host, "error", err)
		l.hear("connecting to " + t.host + ": " + err.Error())
		http.Error(w, "sandbox0d egress proxy: connecting to "+t.host+": "+err.Error(), http.StatusBadGateway)
		return
	}
	defer upstream.Close()
	var upstreamTLS *tls.Conn
	if scoped && r.Method == http.MethodConnect {
		// The real certificate is checked before the client is told the
		// tunnel is open, so a refusal is an HTTP error it can show.
		upstreamTLS, err = l.verifyUpstream(r.Context(), upstream, t.host)
		if err != nil {
			msg := certError(t.host, err)
			l.p.log.Warn("egress: upstream TLS refused", "session_id", l.sessionID, "host", t.host, "reason", msg)
			l.hear(msg)
			http.Error(w, "sandbox0d egress proxy: "+msg, http.StatusBadGateway)
			return
		}
	} else if scoped {
		// Before the hijack: the body is still the server's to read.
		l.rewrite(r, t.host, sess.For(t.host))
	}
	if !l.track(upstream) {
		return
	}
	defer l.untrack(upstream)
	l.p.allowed.Add(1)
	l.p.log.Debug("egress allowed", "session_id", l.sessionID, "environment", l.pol.environment,
		"host", t.host, "port", t.port, "method", r.Method)

	client, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer client.Close()
	if !l.track(client) {
		return
	}
	defer l.untrack(client)
	if r.Method == http.MethodConnect {
		if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
			return
		}
		if upstreamTLS != nil {
			l.intercept(client, buf.Reader, upstreamTLS, t, sess)
			return
		}
		// Bytes the client sent after its CONNECT header are in buf.
		relay(client, upstream, buf.Reader)
		return
	}
	// One request per connection: the next request on the client's
	// connection could name another host, so the server is told to close.
	r.Header.Del("Proxy-Connection")
	r.Header.Del("Proxy-Authorization")
	r.Close = true
	r.RequestURI = ""
	// The Host header goes where the checked URL says, so a shared front
	// (a CDN) is not asked for another name than the one allowed. net/http
	// already takes Host from an absolute-form request line (RFC 7230
	// 5.4); set here so the invariant does not rest on that alone.
	r.Host = r.URL.Host
	if err := r.Write(upstream); err != nil {
		return
	}
	_, _ = io.Copy(client, upstream)
}

// deny answers 403 with a body naming the policy, logs it and counts it.
func (l *listener) deny(w http.ResponseWriter, dest, reason string) {
	l.p.denied.Add(1)
	// One line per session per logEvery, with the count of those left out:
	// a harness retrying a denied host in a loop must not flood the log.
	l.p.warn.Log(slog.LevelWarn, "denied:"+l.sessionID, "egress denied", "session_id", l.sessionID, "environment", l.pol.environment,
		"destination", dest, "reason", reason)
	msg := fmt.Sprintf("%s denied by the network policy of environment %s (networking type %s): %s",
		dest, l.pol.environment, l.pol.networking(), reason)
	l.hear(msg)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusForbidden)
	fmt.Fprintf(w, "sandbox0d egress proxy: %s\n", msg)
}

func (l *listener) hear(reason string) {
	if l.refused != nil {
		l.refused(reason)
	}
}

// relay copies both ways until either side is done.
func relay(client, upstream net.Conn, pending *bufio.Reader) {
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(upstream, io.MultiReader(pending, client))
		closeWrite(upstream)
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(client, upstream)
		closeWrite(client)
		done <- struct{}{}
	}()
	<-done
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}
