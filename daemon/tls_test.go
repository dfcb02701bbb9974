package daemon_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
)

// writeSelfSigned writes a self-signed key pair for 127.0.0.1 whose
// certificate carries serial.
func writeSelfSigned(t *testing.T, certPath, keyPath string, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "sandbox0d test"},
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

// servedSerial is the serial of the certificate the listener presents.
func servedSerial(t *testing.T, addr string) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the test checks which cert is served
	require.NoError(t, err)
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// A bad key pair must stop the start before READY: New fails and names the
// key, and nothing is left listening.
func TestTLSKeyPairIsCheckedBeforeReady(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := baseConfig(dir)
	cfg.Listen = "127.0.0.1:0"
	cfg.Auth.APIKeys = []string{"s0d_configured"}
	cfg.TLS = daemon.TLSConfig{Cert: filepath.Join(dir, "missing.crt"), Key: filepath.Join(dir, "missing.key")}
	_, err := daemon.New(cfg, slog.New(slog.DiscardHandler), daemon.Options{Backend: sessionstest.New(nil)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tls.cert")
	assert.Contains(t, err.Error(), "missing.crt")

	// A certificate with another pair's key is refused too.
	writeSelfSigned(t, filepath.Join(dir, "a.crt"), filepath.Join(dir, "a.key"), 1)
	writeSelfSigned(t, filepath.Join(dir, "b.crt"), filepath.Join(dir, "b.key"), 2)
	cfg.TLS = daemon.TLSConfig{Cert: filepath.Join(dir, "a.crt"), Key: filepath.Join(dir, "b.key")}
	_, err = daemon.New(cfg, slog.New(slog.DiscardHandler), daemon.Options{Backend: sessionstest.New(nil)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tls.cert")
}

// Reload (SIGHUP) re-reads the key pair: new handshakes get the renewed
// certificate; a broken renewal keeps the running one.
func TestTLSReloadServesTheRenewedCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeSelfSigned(t, certPath, keyPath, 1)
	cfg := baseConfig(dir)
	cfg.Listen = "127.0.0.1:0"
	cfg.Auth.APIKeys = []string{"s0d_configured"}
	cfg.TLS = daemon.TLSConfig{Cert: certPath, Key: keyPath}
	cfg.Runs.Retention.Interval = time.Hour
	r := start(t, cfg, daemon.Options{Backend: sessionstest.New(nil)})
	addr := r.d.TCPAddr().String()
	assert.EqualValues(t, 1, servedSerial(t, addr))

	writeSelfSigned(t, certPath, keyPath, 2)
	require.NoError(t, r.d.Reload(cfg))
	assert.EqualValues(t, 2, servedSerial(t, addr))

	require.NoError(t, os.WriteFile(keyPath, []byte("not a key"), 0o600))
	err := r.d.Reload(cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tls.cert")
	assert.EqualValues(t, 2, servedSerial(t, addr), "a failed reload keeps the running certificate")
}
