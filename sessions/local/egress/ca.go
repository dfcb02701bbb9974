package egress

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The files of the daemon's interception CA, in its directory (inside the
// data dir, which no sandbox sees). The key never leaves the daemon.
const (
	caCertFile = "ca.crt"
	caKeyFile  = "ca.key"
	// BundleFile is the system bundle plus the CA certificate: what a
	// sandbox trusts (bound read-only into it; public).
	BundleFile = "bundle.pem"
)

// systemBundles are where Debian, Fedora and Alpine keep the system's
// trusted roots; the first that exists goes into the sandbox bundle.
var systemBundles = []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"}

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 7 * 24 * time.Hour
	// leafRenew mints a new leaf when the cached one has less left.
	leafRenew = 24 * time.Hour
)

// CA mints the leaf certificates with which the proxy terminates TLS for
// hosts that have a scoped credential.
type CA struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	bundle string
	now    func() time.Time

	mu     sync.Mutex
	leaves map[string]*tls.Certificate
}

// LoadCA reads the CA in dir, creating it (ECDSA P-256, key file 0600) the
// first time, and (re)writes the sandbox bundle next to it.
func LoadCA(dir string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("egress CA: %w", err)
	}
	certPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	certPEM, err1 := os.ReadFile(certPath)
	keyPEM, err2 := os.ReadFile(keyPath)
	if errors.Is(err1, os.ErrNotExist) && errors.Is(err2, os.ErrNotExist) {
		certPEM, keyPEM, err1 = newCA()
		if err1 != nil {
			return nil, fmt.Errorf("egress CA: %w", err1)
		}
		if err := writeFile(keyPath, keyPEM, 0o600); err != nil {
			return nil, fmt.Errorf("egress CA: %w", err)
		}
		if err := writeFile(certPath, certPEM, 0o644); err != nil {
			return nil, fmt.Errorf("egress CA: %w", err)
		}
	} else if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("egress CA in %s: %w (remove both %s and %s to make a new one)", dir, err, caCertFile, caKeyFile)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("egress CA in %s: %w (remove both %s and %s to make a new one)", dir, err, caCertFile, caKeyFile)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("egress CA in %s: the key is not ECDSA", dir)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("egress CA in %s: %w", dir, err)
	}
	ca := &CA{cert: cert, key: key, bundle: filepath.Join(dir, BundleFile), now: time.Now, leaves: map[string]*tls.Certificate{}}
	var system []byte
	for _, p := range systemBundles {
		if data, err := os.ReadFile(p); err == nil {
			system = data
			break
		}
	}
	bundle := append(append(system, '\n'), certPEM...)
	if err := writeFile(ca.bundle, bundle, 0o644); err != nil {
		return nil, fmt.Errorf("egress CA: %w", err)
	}
	return ca, nil
}

// Bundle is the path of the sandbox's trust bundle (system roots + CA).
func (ca *CA) Bundle() string { return ca.bundle }

// Certificate is the CA's certificate (public).
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

func newCA() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "sandbox0d egress CA " + host, Organization: []string{"sandbox0d"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// leaf returns a certificate for host, minted once and cached until a day
// before it expires.
func (ca *CA) leaf(host string) (*tls.Certificate, error) {
	host = strings.ToLower(host)
	now := ca.now()
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if c, ok := ca.leaves[host]; ok && now.Add(leafRenew).Before(c.Leaf.NotAfter) {
		return c, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: host},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	c := &tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key, Leaf: leaf}
	ca.leaves[host] = c
	return c, nil
}

// writeFile replaces path atomically with data at mode.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func pemOf(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}
