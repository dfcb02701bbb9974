package egress

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/sessions/local/projection"
	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
)

const (
	secretHeader = "real-header-secret-0123456789"
	secretBody   = "real-body-secret-9876543210"
)

// seen is what a test server received.
type seen struct {
	mu   sync.Mutex
	reqs []string // header dump + body of each request
}

func (s *seen) handler(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var b strings.Builder
	b.WriteString(r.Method + " " + r.URL.String() + "\n")
	_ = r.Header.Write(&b)
	b.WriteString("\n")
	b.Write(body)
	s.mu.Lock()
	s.reqs = append(s.reqs, b.String())
	s.mu.Unlock()
	io.WriteString(w, "ok")
}

func (s *seen) all() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.reqs, "\n----\n")
}

// projRig is a proxy with a CA, a session projecting two credentials to
// scoped.test (one in headers, one in bodies), and a resolver that sends
// every *.test name to loopback.
type projRig struct {
	p        *Proxy
	sock     string
	sess     *projection.Session
	env      map[string]string
	caPool   *x509.CertPool
	upstream *CA // signs the "real" certificates of the test hosts
	logs     *logBuffer
}

func newProjRig(t testing.TB) *projRig {
	t.Helper()
	dir := t.TempDir()
	ca, err := LoadCA(filepath.Join(dir, "ca"))
	require.NoError(t, err)
	up, err := LoadCA(filepath.Join(dir, "upstream"))
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(up.Certificate())
	logs := &logBuffer{}
	p, err := New(Config{CA: ca, UpstreamRoots: roots, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Resolve: func(ctx context.Context, host string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	sess := projection.NewSession()
	env := sess.Refresh([]projection.Credential{
		{VaultID: "vlt", Name: "HDR_TOKEN", Value: secretHeader, Hosts: []string{"scoped.test"}, Header: true},
		{VaultID: "vlt", Name: "BODY_TOKEN", Value: secretBody, Hosts: []string{"scoped.test"}, Body: true},
	})
	t.Cleanup(p.Project("ses_proj", sess))
	sock, release, err := p.Listen("ses_proj", sandbox.Network{Limited: true, Environment: "env",
		AllowedHosts: []string{"scoped.test", "other.test", "badcert.test", "127.0.0.1"}})
	require.NoError(t, err)
	t.Cleanup(release)
	// The sandbox's bundle: the "system" roots (here the test hosts' CA)
	// plus the daemon's CA.
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())
	pool.AddCert(up.Certificate())
	return &projRig{p: p, sock: sock, sess: sess, env: env, caPool: pool, upstream: up, logs: logs}
}

// client goes through the proxy socket and trusts only the daemon's CA,
// as a harness in the sandbox does.
func (r *projRig) client() *http.Client {
	proxyURL, _ := url.Parse("http://proxy.invalid")
	return &http.Client{Transport: &http.Transport{
		Proxy: http.ProxyURL(proxyURL),
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", r.sock)
		},
		TLSClientConfig: &tls.Config{RootCAs: r.caPool},
	}}
}

// tlsServer serves h over TLS with a certificate for name signed by ca.
func tlsServer(t testing.TB, ca *CA, name string, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	leaf, err := ca.leaf(name)
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{*leaf}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func port(srv *httptest.Server) string {
	u, _ := url.Parse(srv.URL)
	return u.Port()
}

// send posts a request carrying both placeholders in a header, the URL and
// the body.
func (r *projRig) send(t *testing.T, c *http.Client, rawURL string) {
	t.Helper()
	hp, bp := r.env["HDR_TOKEN"], r.env["BODY_TOKEN"]
	body := `{"h":"` + hp + `","b":"` + bp + `"}`
	req, err := http.NewRequest(http.MethodPost, rawURL+"?q="+hp, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+hp)
	req.Header.Set("X-Body-Token", bp)
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", got)
}

// Over HTTPS to the scoped host the proxy terminates TLS and substitutes
// each credential where its injection_location says and nowhere else (not
// the URL, not the other location); the same request to another host
// arrives with the placeholders. Two requests share one kept-alive
// connection.
func TestProjectionHTTPS(t *testing.T) {
	rig := newProjRig(t)
	var scoped, other seen
	s := tlsServer(t, rig.upstream, "scoped.test", scoped.handler)
	o := tlsServer(t, rig.upstream, "other.test", other.handler)
	c := rig.client()
	var conns int
	var mu sync.Mutex
	c.Transport.(*http.Transport).DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
		mu.Lock()
		conns++
		mu.Unlock()
		return (&net.Dialer{}).DialContext(ctx, "unix", rig.sock)
	}
	rig.send(t, c, "https://scoped.test:"+port(s)+"/v1/x")
	rig.send(t, c, "https://scoped.test:"+port(s)+"/v1/x")
	rig.send(t, c, "https://other.test:"+port(o)+"/v1/x")
	assert.Equal(t, 2, conns, "the two requests to the scoped host share a kept-alive connection")

	got := scoped.all()
	hp, bp := rig.env["HDR_TOKEN"], rig.env["BODY_TOKEN"]
	assert.Contains(t, got, "Authorization: Bearer "+secretHeader, "header credential substituted in a header")
	assert.Contains(t, got, "X-Body-Token: "+bp, "a body-only credential is not substituted in headers")
	assert.Contains(t, got, `"b":"`+secretBody+`"`, "body credential substituted in the body")
	assert.Contains(t, got, `"h":"`+hp+`"`, "a header-only credential is not substituted in bodies")
	assert.Contains(t, got, "?q="+hp, "never in the URL")
	assert.Equal(t, 2, strings.Count(got, secretHeader))

	assert.NotContains(t, other.all(), secretHeader)
	assert.NotContains(t, other.all(), secretBody)
	assert.Contains(t, other.all(), "Authorization: Bearer "+hp, "another host gets the placeholder unchanged")
	assert.NotContains(t, rig.logs.String(), secretHeader)
	assert.NotContains(t, rig.logs.String(), secretBody)
}

// Plain HTTP to the scoped host is rewritten the same way.
func TestProjectionPlainHTTP(t *testing.T) {
	rig := newProjRig(t)
	var scoped, other seen
	s := httptest.NewServer(http.HandlerFunc(scoped.handler))
	defer s.Close()
	o := httptest.NewServer(http.HandlerFunc(other.handler))
	defer o.Close()
	c := rig.client()
	rig.send(t, c, "http://scoped.test:"+port(s)+"/")
	rig.send(t, c, "http://other.test:"+port(o)+"/")
	assert.Contains(t, scoped.all(), "Authorization: Bearer "+secretHeader)
	assert.Contains(t, scoped.all(), `"b":"`+secretBody+`"`)
	assert.NotContains(t, other.all(), secretHeader)
	assert.NotContains(t, other.all(), secretBody)
}

// A scoped host whose real certificate does not verify is refused before
// anything is sent: the client gets a 502 that says why, the log too.
func TestProjectionRefusesUnverifiedUpstream(t *testing.T) {
	rig := newProjRig(t)
	var bad seen
	srv := httptest.NewTLSServer(http.HandlerFunc(bad.handler)) // its own self-signed certificate
	defer srv.Close()
	// Make badcert.test scoped too.
	rig.sess.Refresh([]projection.Credential{{VaultID: "vlt", Name: "HDR_TOKEN", Value: secretHeader,
		Hosts: []string{"badcert.test"}, Header: true}})
	req, _ := http.NewRequest(http.MethodGet, "https://badcert.test:"+port(srv)+"/", nil)
	req.Header.Set("Authorization", rig.env["HDR_TOKEN"])
	_, err := rig.client().Do(req)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Bad Gateway")
	assert.Empty(t, bad.all(), "nothing reached the host")
	assert.Contains(t, rig.logs.String(), "does not verify")
	assert.Contains(t, rig.logs.String(), "local.egress.upstream_ca_file")
}

// A CONNECT to a host without a scoped credential is a plain tunnel: the
// client sees the host's own certificate, not the daemon's.
func TestProjectionTunnelsOtherHosts(t *testing.T) {
	rig := newProjRig(t)
	var other seen
	o := tlsServer(t, rig.upstream, "other.test", other.handler)
	resp, err := rig.client().Get("https://other.test:" + port(o) + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.True(t, rig.upstream.Certificate().Equal(resp.TLS.VerifiedChains[0][1]), "the host's own chain")
	resp, err = rig.client().Get("https://scoped.test:" + port(tlsServer(t, rig.upstream, "scoped.test", other.handler)) + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.True(t, rig.p.CA().Certificate().Equal(resp.TLS.VerifiedChains[0][1]), "the daemon's chain")
}

// The CA is made once: its key file is 0600 and a second load reuses it;
// the bundle holds the system roots and the CA.
func TestCAPersists(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadCA(dir)
	require.NoError(t, err)
	fi, err := os.Stat(filepath.Join(dir, caKeyFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	again, err := LoadCA(dir)
	require.NoError(t, err)
	assert.True(t, ca.Certificate().Equal(again.Certificate()))
	bundle, err := os.ReadFile(again.Bundle())
	require.NoError(t, err)
	assert.True(t, bytes.HasSuffix(bytes.TrimSpace(bundle), bytes.TrimSpace(pemOf(ca.Certificate()))))
	key, _ := os.ReadFile(filepath.Join(dir, caKeyFile))
	assert.False(t, bytes.Contains(bundle, key))
}
