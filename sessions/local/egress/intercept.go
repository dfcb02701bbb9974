package egress

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/sandbox0/sandbox0d/sessions/local/projection"
)

// DefaultMaxBodyBytes is the largest request body the proxy reads whole to
// substitute credentials in (injection_location body); a larger one is
// sent as it came, placeholders and all.
const DefaultMaxBodyBytes = 8 << 20

// Project registers a session's credentials: from now on requests of the
// session to a credential's hosts get the real value in place of its
// placeholder (HTTPS to those hosts is terminated with the daemon's CA).
// release undoes it. A later Project of the same session replaces the
// earlier one.
func (p *Proxy) Project(sessionID string, s *projection.Session) (release func()) {
	p.mu.Lock()
	p.projections[sessionID] = s
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		if p.projections[sessionID] == s {
			delete(p.projections, sessionID)
		}
		p.mu.Unlock()
	}
}

// CA is the proxy's interception CA, nil when it has none (then no
// session's credentials may be scoped to an HTTPS host).
func (p *Proxy) CA() *CA { return p.ca }

func (p *Proxy) projection(sessionID string) *projection.Session {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.projections[sessionID]
}

// rewrite substitutes the session's credentials for host into r, where
// their injection_location allows and nowhere else.
func (l *listener) rewrite(r *http.Request, host string, sub projection.Substitution) {
	sub.RewriteHeader(r.Header)
	if !sub.Body() || r.Body == nil || r.Body == http.NoBody {
		return
	}
	limit := l.p.maxBody
	data, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil || int64(len(data)) > limit {
		// Too large (or broken): sent as it came, never substituted.
		l.p.log.Info("egress: request body not searched for placeholders", "session_id", l.sessionID, "host", host,
			"reason", fmt.Sprintf("larger than %d bytes or unreadable", limit))
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(data), r.Body), r.Body}
		return
	}
	_ = r.Body.Close()
	data = sub.RewriteBody(data)
	r.Body = io.NopCloser(bytes.NewReader(data))
	r.ContentLength = int64(len(data))
	r.TransferEncoding = nil
	r.Header.Del("Content-Length")
}

// verifyUpstream opens TLS to the real host and verifies its certificate
// against the system roots (and local.egress.upstream_ca_file): the proxy
// stands in for the harness's own check, which now sees the daemon's CA.
func (l *listener) verifyUpstream(ctx context.Context, raw net.Conn, host string) (*tls.Conn, error) {
	conn := tls.Client(raw, &tls.Config{ServerName: host, RootCAs: l.p.upstreamRoots, NextProtos: []string{"http/1.1"},
		MinVersion: tls.VersionTLS12})
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	if err := conn.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return conn, nil
}

// intercept serves a CONNECT to a host with a scoped credential: TLS with
// the client under a leaf of the daemon's CA, then HTTP/1.1 requests read
// one by one (keep-alive), rewritten and sent over the verified upstream
// connection. HTTP/2 is not offered, so clients fall back to HTTP/1.1.
func (l *listener) intercept(client net.Conn, pending *bufio.Reader, upstream *tls.Conn, t target, sess *projection.Session) {
	leaf, err := l.p.ca.leaf(t.host)
	if err != nil {
		l.p.log.Warn("egress: minting a certificate failed", "session_id", l.sessionID, "host", t.host, "error", err)
		return
	}
	tc := tls.Server(&prefixConn{Conn: client, r: pending}, &tls.Config{Certificates: []tls.Certificate{*leaf},
		NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12})
	_ = tc.SetDeadline(time.Now().Add(l.p.headerTimeout))
	if err := tc.Handshake(); err != nil {
		l.p.log.Info("egress: the client's TLS handshake failed (does it trust the daemon's CA?)",
			"session_id", l.sessionID, "host", t.host, "error", err)
		return
	}
	_ = tc.SetDeadline(time.Time{})
	cr, ur := bufio.NewReader(tc), bufio.NewReader(upstream)
	hostHeader := t.host
	if t.port != 443 {
		hostHeader = net.JoinHostPort(t.host, strconv.Itoa(t.port))
	}
	for {
		// Between requests the connection is idle: it has as long as a
		// new connection has to send its header.
		_ = tc.SetReadDeadline(time.Now().Add(l.p.headerTimeout))
		req, err := http.ReadRequest(cr)
		if err != nil {
			return
		}
		_ = tc.SetReadDeadline(time.Time{})
		// The credential was scoped by the verified name, so the request
		// goes to that name whatever Host the client wrote.
		req.Host = hostHeader
		req.Header.Del("Proxy-Connection")
		req.Header.Del("Proxy-Authorization")
		sub := sess.For(t.host)
		l.rewrite(req, t.host, sub)
		if err := req.Write(upstream); err != nil {
			l.p.log.Info("egress: sending upstream failed", "session_id", l.sessionID, "host", t.host, "error", err)
			return
		}
		resp, err := http.ReadResponse(ur, req)
		if err != nil {
			l.p.log.Info("egress: reading the upstream response failed", "session_id", l.sessionID, "host", t.host, "error", err)
			return
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			// A WebSocket or other upgrade: the rest is bytes both ways.
			if err := resp.Write(tc); err == nil {
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(upstream, cr); closeWrite(upstream); done <- struct{}{} }()
				go func() { _, _ = io.Copy(tc, ur); closeWrite(tc); done <- struct{}{} }()
				<-done
				<-done
			}
			return
		}
		err = resp.Write(tc)
		resp.Body.Close()
		if err != nil || req.Close || resp.Close {
			return
		}
	}
}

// prefixConn reads what was buffered before the rest of the connection.
type prefixConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if c.r != nil && c.r.Buffered() > 0 {
		return c.r.Read(p)
	}
	return c.Conn.Read(p)
}

// certError says, in the words a harness's user needs, why a scoped host's
// certificate was refused.
func certError(host string, err error) string {
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return fmt.Sprintf("the certificate of %s does not verify (%v); the proxy does not send credentials to it. "+
			"A private CA belongs in local.egress.upstream_ca_file", host, verr.Err)
	}
	return fmt.Sprintf("TLS with %s failed: %v", host, err)
}

// TrustBundle is the host path of the bundle a projecting sandbox trusts
// (system roots plus the CA); "" without a CA.
func (p *Proxy) TrustBundle() string {
	if p.ca == nil {
		return ""
	}
	return p.ca.Bundle()
}
