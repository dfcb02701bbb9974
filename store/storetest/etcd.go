// Package storetest runs real etcd clusters for tests: three (or n)
// members embedded in the test process (go.etcd.io/etcd/server/v3/embed) on
// loopback ports with their data in temporary directories. Starting three
// members takes ~2.5 s, so a test package shares one cluster (Shared) and
// gives each test a prefix of its own; tests that stop members start their
// own (Start).
package storetest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// Cluster is a running etcd cluster.
type Cluster struct {
	mu       sync.Mutex
	members  []*member
	dir      string
	external bool
	// clientURLs of an external cluster's members.
	clientURLs []string
}

type member struct {
	cfg  *embed.Config
	etcd *embed.Etcd // nil while stopped
	// An external member (StartExternal) is an etcd process instead.
	args []string
	proc *exec.Cmd
}

// Start starts an n-member cluster for t alone; it is stopped when t ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	return startWithRetry(t, "start etcd", func(dir string) (*Cluster, error) { return start(dir, n) })
}

// StartIn starts an n-member cluster with its data under dir, for a
// program that is not a test (the benchmark harness); the caller stops it.
// Like Start it starts over on new ports, three times at most.
func StartIn(dir string, n int) (*Cluster, error) {
	var c *Cluster
	var err error
	for i := range 3 {
		if c, err = start(fmt.Sprintf("%s/%d", dir, i), n); err == nil {
			return c, nil
		}
	}
	return nil, err
}

// startWithRetry starts a cluster, stopped when the test ends. A port
// freePort found free can be taken before the member binds it (another
// test, another process): start over on new ports, three times at most.
func startWithRetry(t testing.TB, what string, startIn func(dir string) (*Cluster, error)) *Cluster {
	t.Helper()
	var c *Cluster
	var err error
	for range 3 {
		if c, err = startIn(t.TempDir()); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	t.Cleanup(c.Stop)
	return c
}

var (
	sharedOnce sync.Once
	shared     *Cluster
	sharedErr  error
	prefixes   atomic.Uint64
)

// Shared returns the test binary's three-member cluster, started by the
// first caller. Call StopShared from TestMain after m.Run.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	sharedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "storetest-etcd-")
		if err != nil {
			sharedErr = err
			return
		}
		for range 3 {
			if shared, sharedErr = start(fmt.Sprintf("%s/%d", dir, prefixes.Add(1)), 3); sharedErr == nil {
				break
			}
		}
	})
	if sharedErr != nil {
		t.Fatalf("start shared etcd: %v", sharedErr)
	}
	return shared
}

// StopShared stops the shared cluster, if one was started, and removes its data.
func StopShared() {
	stopSharedExternal()
	if shared != nil {
		shared.Stop()
		_ = os.RemoveAll(shared.dir)
	}
}

// Prefix returns a key prefix no other test of the process uses.
func Prefix(t testing.TB) string {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	return fmt.Sprintf("/test/%s-%d/", name, prefixes.Add(1))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func start(dir string, n int) (*Cluster, error) {
	c := &Cluster{dir: dir}
	var initial []string
	for i := range n {
		pp, err := freePort()
		if err != nil {
			return nil, err
		}
		cp, err := freePort()
		if err != nil {
			return nil, err
		}
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.Dir = fmt.Sprintf("%s/m%d", dir, i)
		peer := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", pp)}
		client := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", cp)}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
		cfg.InitialClusterToken = "storetest"
		cfg.LogLevel = "fatal"
		cfg.LogOutputs = []string{"stderr"}
		// Faster elections than etcd's defaults (100/1000 ms) keep the
		// failover tests short; loopback has no latency to allow for.
		cfg.TickMs, cfg.ElectionMs = 50, 500
		initial = append(initial, fmt.Sprintf("m%d=%s", i, peer.String()))
		c.members = append(c.members, &member{cfg: cfg})
	}
	for _, m := range c.members {
		m.cfg.InitialCluster = strings.Join(initial, ",")
	}
	// Every member must be starting before any can be ready (quorum).
	errs := make(chan error, n)
	for _, m := range c.members {
		go func() { errs <- m.start() }()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		c.Stop()
		return nil, first
	}
	return c, nil
}

func (m *member) start() error {
	e, err := embed.StartEtcd(m.cfg)
	if err != nil {
		return fmt.Errorf("member %s: %w", m.cfg.Name, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return fmt.Errorf("member %s: not ready after 60s", m.cfg.Name)
	}
	m.etcd = e
	return nil
}

// Endpoints are the client URLs of every member, running or not.
func (c *Cluster) Endpoints() []string {
	if c.external {
		return append([]string(nil), c.clientURLs...)
	}
	var out []string
	for _, m := range c.members {
		out = append(out, m.cfg.AdvertiseClientUrls[0].String())
	}
	return out
}

// Client returns a client of every member, closed when t ends.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// Leader returns the index of the member that is the raft leader, or -1.
func (c *Cluster) Leader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.external {
		return c.externalLeader()
	}
	for i, m := range c.members {
		if m.etcd != nil && m.etcd.Server.Leader() == m.etcd.Server.MemberID() {
			return i
		}
	}
	return -1
}

// StopMember stops member i hard (its process would be killed: no
// leadership transfer first).
func (c *Cluster) StopMember(i int) {
	if c.external {
		c.stopProcess(i)
		return
	}
	c.mu.Lock()
	m := c.members[i]
	e := m.etcd
	m.etcd = nil
	c.mu.Unlock()
	if e != nil {
		e.Server.HardStop()
		e.Close()
	}
}

// RestartMember starts a stopped member again on its data.
func (c *Cluster) RestartMember(i int) error {
	c.mu.Lock()
	m := c.members[i]
	c.mu.Unlock()
	if c.external {
		return m.startProcess()
	}
	m.cfg.ClusterState = embed.ClusterStateFlagExisting
	// The member binds its old ports again. Another test's free-port probe
	// may hold one for a moment (packages' tests run in parallel): retry
	// that briefly rather than fail the test.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := m.start()
		if err == nil || !strings.Contains(err.Error(), "address already in use") || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// RevokeLease revokes a lease, as etcd does when its holder stops renewing.
func (c *Cluster) RevokeLease(t testing.TB, id int64) {
	t.Helper()
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(id)); err != nil {
		t.Fatalf("revoke lease %x: %v", id, err)
	}
}

// Stop stops every member.
func (c *Cluster) Stop() {
	for i := range c.members {
		c.StopMember(i)
	}
}

// WaitLeader waits until the cluster has a raft leader that answers.
func (c *Cluster) WaitLeader(ctx context.Context, cli *clientv3.Client) error {
	for {
		if _, err := cli.Get(ctx, "health"); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Dump returns every key under prefix with its value, read from the
// cluster itself (not through a store): what a test asserts is, or is not,
// in etcd.
func (c *Cluster) Dump(t testing.TB, prefix string) map[string][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Client(t).Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("etcd get %s: %v", prefix, err)
	}
	out := make(map[string][]byte, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = kv.Value
	}
	return out
}
