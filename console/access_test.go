package console_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
)

func noRedirects() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func postSignin(t *testing.T, base, key string) *http.Response {
	t.Helper()
	resp, err := noRedirects().PostForm(base+"/console/signin", url.Values{"api_key": {key}})
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// Failed sign-ins are rate-limited per client: after five wrong keys in a
// minute even the right key waits.
func TestSigninFailuresAreRateLimited(t *testing.T) {
	r := startRig(t, rigConfig(t), daemon.Options{})
	key := r.admin(t, http.MethodPost, "/admin/apikeys", map[string]string{"name": "k"})["key"].(string)
	for i := range 5 {
		assert.Equal(t, http.StatusUnauthorized, postSignin(t, r.tcpURL, "s0d_guess").StatusCode, "attempt %d", i+1)
	}
	resp := postSignin(t, r.tcpURL, key)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	assert.Contains(t, r.logs.String(), "console sign-in refused")
}

// A right key signs in at once; the cookie is HttpOnly and SameSite=Strict.
func TestSigninSetsAStrictCookie(t *testing.T) {
	r := startRig(t, rigConfig(t), daemon.Options{})
	key := r.admin(t, http.MethodPost, "/admin/apikeys", map[string]string{"name": "k"})["key"].(string)
	resp := postSignin(t, r.tcpURL, key)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	set := resp.Header.Get("Set-Cookie")
	assert.Contains(t, set, "HttpOnly")
	assert.Contains(t, set, "SameSite=Strict")
	assert.NotContains(t, set, key, "the cookie is a random token, not the key")
}

// The Host header must name localhost, an IP address or a configured name
// (DNS rebinding); every page carries the strict CSP.
func TestHostCheckAndHeaders(t *testing.T) {
	cfg := rigConfig(t)
	cfg.Console.AllowedHosts = []string{"console.example.org"}
	r := startRig(t, cfg, daemon.Options{})
	get := func(host string) *http.Response {
		req, err := http.NewRequest(http.MethodGet, r.sockURL+"/console/", nil)
		require.NoError(t, err)
		req.Host = host
		resp, err := noRedirects().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	assert.Equal(t, http.StatusMisdirectedRequest, get("evil.example").StatusCode)
	assert.Equal(t, http.StatusMisdirectedRequest, get("evil.example:8080").StatusCode)
	for _, ok := range []string{"localhost:8080", "127.0.0.1", "[::1]:80", "console.example.org", "CONSOLE.example.org."} {
		assert.Equal(t, http.StatusOK, get(ok).StatusCode, ok)
	}

	resp, err := http.Get(r.sockURL + "/console/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	assert.Contains(t, csp, "script-src 'self'")
	assert.Contains(t, csp, "frame-ancestors 'none'")
	assert.NotContains(t, csp, "unsafe-inline")
	assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	// No inline script or style anywhere in a page.
	assert.NotContains(t, string(body), "<script>")
	assert.NotContains(t, string(body), "style=")
	assert.True(t, strings.Contains(string(body), `<script src="/console/static/console.js" defer></script>`))

	// Static files come from the binary.
	resp, err = http.Get(r.sockURL + "/console/static/console.js")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	// A state change without a browser's cross-site markers (curl on the
	// socket) is allowed; one marked cross-site is refused.
	req, _ := http.NewRequest(http.MethodPost, r.sockURL+"/console/deployments/depl_x/pause", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err = noRedirects().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
}

// With console.enabled false nothing is served at /console/ (the API
// answers its usual 404 envelope).
func TestConsoleCanBeTurnedOff(t *testing.T) {
	cfg := rigConfig(t)
	cfg.Console.Enabled = false
	r := startRig(t, cfg, daemon.Options{})
	resp, err := http.Get(r.sockURL + "/console/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// On TLS the cookie is Secure with the __Host- prefix (no subdomain can set
// or shadow it), and it works only over TLS.
func TestSigninCookieOnTLS(t *testing.T) {
	cfg := rigConfig(t)
	dir := t.TempDir()
	cfg.TLS.Cert, cfg.TLS.Key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, cfg.TLS.Cert, cfg.TLS.Key)
	r := startRig(t, cfg, daemon.Options{})
	key := r.admin(t, http.MethodPost, "/admin/apikeys", map[string]string{"name": "k"})["key"].(string)
	base := strings.Replace(r.tcpURL, "http://", "https://", 1)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // a self-signed test certificate
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.PostForm(base+"/console/signin", url.Values{"api_key": {key}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	cookies := resp.Cookies()
	require.Len(t, cookies, 1)
	assert.Equal(t, "__Host-s0d_console", cookies[0].Name)
	assert.True(t, cookies[0].Secure)
	assert.True(t, cookies[0].HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, cookies[0].SameSite)
	assert.Equal(t, "/", cookies[0].Path)

	req, _ := http.NewRequest(http.MethodGet, base+"/console/", nil)
	req.AddCookie(cookies[0])
	resp, err = client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func writeSelfSigned(t *testing.T, certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sandbox0d console test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
}
