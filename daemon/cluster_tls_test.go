package daemon_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/store/storetest"
)

// writePrivateCA writes a self-signed certificate for 127.0.0.1 that is its
// own CA (the trust anchor a private cluster would hand each node), and its
// key.
func writePrivateCA(t *testing.T, dir string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(26), Subject: pkix.Name{CommonName: "sandbox0d cluster test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certPath, keyPath = filepath.Join(dir, "cluster.crt"), filepath.Join(dir, "cluster.key")
	require.NoError(t, os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certPath, keyPath
}

// Nodes that serve https with a certificate of a private CA reach each
// other with cluster.ca_file: a session created on one node is read, and
// its events listed, through the other; a ca_file that cannot be used
// stops the start naming the key.
func TestClusterForwardsOverHTTPSWithPrivateCA(t *testing.T) {
	cert, key := writePrivateCA(t, t.TempDir())
	nodes := startLocalCluster(t, 2, func(cfg *daemon.Config) {
		cfg.TLS = daemon.TLSConfig{Cert: cert, Key: key}
		cfg.Cluster.AdvertiseURL = "https://" + cfg.Listen
		cfg.Cluster.CAFile = cert
	})
	status, created := do(t, nodes[0].http, "POST", nodes[0].url("/v1/sessions"), "", map[string]any{
		"agent": "agent_a", "environment_id": "env_1"})
	require.Equal(t, 200, status, "%v", created)
	id := created["id"].(string)
	other := nodes[1]
	if created["node"] == other.name {
		other = nodes[0]
	}
	status, body := do(t, other.http, "GET", other.url("/v1/sessions/"+id), "", nil)
	require.Equal(t, 200, status, "read through %s over https: %v", other.name, body)
	assert.Equal(t, id, body["id"])
	assert.NotEqual(t, other.name, body["node"], "served by the owner")
	status, body = do(t, other.http, "GET", other.url("/v1/sessions/"+id+"/events"), "", nil)
	require.Equal(t, 200, status, "%v", body)

	bad := nodes[0].cfg
	bad.DataDir, bad.Socket, bad.Listen = t.TempDir(), filepath.Join(t.TempDir(), "s.sock"), "127.0.0.1:0"
	bad.Cluster.NodeName = "node-bad"
	bad.Cluster.CAFile = key // a key, not a certificate
	_, err := daemon.New(bad, slog.New(slog.DiscardHandler), daemon.Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cluster.ca_file")
	assert.Contains(t, err.Error(), "no PEM certificate")
}

// Without cluster.ca_file the private CA is not trusted: forwarding fails
// with the verification error (502), never unverified.
func TestClusterRefusesAnUntrustedNodeCertificate(t *testing.T) {
	cert, key := writePrivateCA(t, t.TempDir())
	nodes := startLocalClusterOn(t, storetest.Start(t, 3), 2, func(cfg *daemon.Config) {
		cfg.TLS = daemon.TLSConfig{Cert: cert, Key: key}
		cfg.Cluster.AdvertiseURL = "https://" + cfg.Listen
	})
	status, created := do(t, nodes[0].http, "POST", nodes[0].url("/v1/sessions"), "", map[string]any{
		"agent": "agent_a", "environment_id": "env_1"})
	if status == 502 {
		assert.Contains(t, created["error"].(map[string]any)["message"], "certificate")
		return // placed on the other node: the forwarded create itself was refused
	}
	require.Equal(t, 200, status, "%v", created)
	other := nodes[1]
	if created["node"] == other.name {
		other = nodes[0]
	}
	status, body := do(t, other.http, "GET", other.url("/v1/sessions/"+created["id"].(string)), "", nil)
	require.Equal(t, 502, status, "%v", body)
	assert.Contains(t, body["error"].(map[string]any)["message"], "certificate")
}
