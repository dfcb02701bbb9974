package daemon_test

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/store/storetest"
)

// A cluster node keeps pinging systemd's watchdog while etcd is away: a
// restart cannot bring etcd back, and under the unit (WatchdogSec=60s) an
// outage past a minute had every node killed, their running local sessions
// with them, and then failing its start until etcd returned, while
// docs/cluster.md promises the node serves again without a restart.
func TestClusterWatchdogPingsThroughAnEtcdOutage(t *testing.T) {
	etcd := storetest.Start(t, 1)
	dir := t.TempDir()
	notify := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	require.NoError(t, err)
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", notify)
	t.Setenv("WATCHDOG_USEC", "400000") // a ping every 200 ms

	cfg := baseConfig(dir)
	cfg.Store = daemon.StoreConfig{Type: "etcd", Etcd: daemon.StoreEtcdConfig{Endpoints: etcd.Endpoints(), Prefix: "/watchdog/",
		DialTimeout: 5 * time.Second, RequestTimeout: time.Second}}
	cfg.Cluster = daemon.ClusterConfig{NodeName: "n1", LeaseTTL: 4 * time.Second}
	start(t, cfg, daemon.Options{Backend: sessionstest.New(nil)})

	// read returns the next notification, or "" after the deadline.
	buf := make([]byte, 512)
	read := func(until time.Time) string {
		require.NoError(t, conn.SetReadDeadline(until))
		n, err := conn.Read(buf)
		if err != nil {
			return ""
		}
		return string(buf[:n])
	}
	// Until the first ping: etcd answers.
	for deadline := time.Now().Add(10 * time.Second); ; {
		state := read(deadline)
		require.NotEmpty(t, state, "no WATCHDOG=1 while etcd answers")
		if state == "WATCHDOG=1" {
			break
		}
	}
	etcd.Stop()
	pings := 0
	for deadline := time.Now().Add(3 * time.Second); ; {
		state := read(deadline)
		if state == "" {
			break
		}
		if state == "WATCHDOG=1" {
			pings++
		}
	}
	assert.GreaterOrEqual(t, pings, 3, "WATCHDOG=1 in the 3 s after etcd stopped (one every 200 ms is due)")
}
