package daemon

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
)

// certStore holds the TCP listener's key pair. It is loaded before READY so
// a bad path stops the start instead of failing the first handshake, and
// replaced on SIGHUP so a renewed certificate is served without a restart.
type certStore struct {
	cert atomic.Pointer[tls.Certificate]
}

// load reads and checks the key pair; the running one is replaced only when
// the new one is good.
func (s *certStore) load(c TLSConfig) error {
	pair, err := tls.LoadX509KeyPair(c.Cert, c.Key)
	if err != nil {
		return &ConfigError{Key: "tls.cert", Problem: fmt.Sprintf("cannot load the key pair (cert %s, key %s): %v", c.Cert, c.Key, err)}
	}
	s.cert.Store(&pair)
	return nil
}

func (s *certStore) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cert.Load(), nil
}

// serverConfig is the TLS configuration of the TCP listener.
func (s *certStore) serverConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.getCertificate}
}
