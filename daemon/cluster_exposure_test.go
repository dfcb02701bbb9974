package daemon_test

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/store/storetest"
)

// A cluster node listens beyond loopback before any API key exists (the
// other nodes forward to it with the cluster key; docs/cluster.md's
// drop-in listens on the node's address), over TLS only, and its listener
// still refuses a client without a key. Found by
// internal/systemdtest's TestClusterDropInUnderSystemd: every node of a new
// cluster refused to start, asking for an API key no node was up to create.
func TestClusterNodeListensBeyondLoopbackBeforeTheFirstAPIKey(t *testing.T) {
	t.Parallel()
	etcd := storetest.Start(t, 1)
	dir := t.TempDir()
	cfg := baseConfig(dir)
	cfg.Listen = "0.0.0.0:0"
	cfg.Store = daemon.StoreConfig{Type: "etcd", Etcd: daemon.StoreEtcdConfig{ReadMirror: true, Endpoints: etcd.Endpoints(), Prefix: "/exposure/",
		DialTimeout: 5 * time.Second, RequestTimeout: 5 * time.Second}}
	cfg.Cluster = daemon.ClusterConfig{NodeName: "n1", LeaseTTL: 4 * time.Second}

	_, err := daemon.New(cfg, slog.New(slog.DiscardHandler), daemon.Options{Backend: sessionstest.New(nil)})
	require.Error(t, err, "the cluster key would cross the network in plaintext")
	assert.Contains(t, err.Error(), "without TLS")

	cfg.TLS = daemon.TLSConfig{Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
	writeSelfSigned(t, cfg.TLS.Cert, cfg.TLS.Key, 1)
	r := start(t, cfg, daemon.Options{Backend: sessionstest.New(nil)})
	port := r.d.TCPAddr().(*net.TCPAddr).Port
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, err := http.NewRequest(http.MethodGet, "https://127.0.0.1:"+strconv.Itoa(port)+"/v1/deployments", nil)
	require.NoError(t, err)
	req.Header.Set("anthropic-beta", "managed-agents-2026-04-01")
	resp, err := hc.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a client without a key: %s", body)
}
