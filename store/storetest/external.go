package storetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// External clusters: etcd as a Debian user runs it (apt-get install
// etcd-server: bookworm ships 3.4), three processes on loopback. Tests
// skip when no etcd binary is on PATH; .ci/run installs it.

// ExternalBinary is the etcd binary: $SANDBOX0D_ETCD_BINARY when set (the
// benchmarks' other etcd, bench/etcdserver), else the one on PATH, else "".
func ExternalBinary() string {
	if p := os.Getenv("SANDBOX0D_ETCD_BINARY"); p != "" {
		return p
	}
	p, err := exec.LookPath("etcd")
	if err != nil {
		return ""
	}
	return p
}

// ExternalVersion is what `etcd --version` says ("3.4.23"), or "".
func ExternalVersion() string {
	bin := ExternalBinary()
	if bin == "" {
		return ""
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "etcd Version: "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

var (
	externalOnce sync.Once
	external     *Cluster
	externalErr  error
)

// SharedExternal is Shared for an external cluster; it skips t without an
// etcd binary. StopShared stops it too.
func SharedExternal(t testing.TB) *Cluster {
	t.Helper()
	if ExternalBinary() == "" {
		t.Skip("no etcd binary on PATH (apt-get install etcd-server)")
	}
	externalOnce.Do(func() {
		dir, err := os.MkdirTemp("", "storetest-etcd-ext-")
		if err != nil {
			externalErr = err
			return
		}
		for i := range 3 {
			if external, externalErr = startExternal(fmt.Sprintf("%s/%d", dir, i), 3); externalErr == nil {
				break
			}
		}
	})
	if externalErr != nil {
		t.Fatalf("start etcd processes: %v", externalErr)
	}
	return external
}

// StartExternal starts n etcd processes for t alone (skips without etcd).
func StartExternal(t testing.TB, n int) *Cluster {
	t.Helper()
	if ExternalBinary() == "" {
		t.Skip("no etcd binary on PATH (apt-get install etcd-server)")
	}
	return startWithRetry(t, "start etcd processes", func(dir string) (*Cluster, error) { return startExternal(dir, n) })
}

func stopSharedExternal() {
	if external != nil {
		external.Stop()
		_ = os.RemoveAll(external.dir)
	}
}

func startExternal(dir string, n int) (*Cluster, error) {
	c := &Cluster{dir: dir, external: true}
	var initial []string
	type urls struct{ peer, client string }
	var us []urls
	for i := range n {
		pp, err := freePort()
		if err != nil {
			return nil, err
		}
		cp, err := freePort()
		if err != nil {
			return nil, err
		}
		u := urls{fmt.Sprintf("http://127.0.0.1:%d", pp), fmt.Sprintf("http://127.0.0.1:%d", cp)}
		us = append(us, u)
		initial = append(initial, fmt.Sprintf("m%d=%s", i, u.peer))
	}
	for i, u := range us {
		args := []string{"--name", fmt.Sprintf("m%d", i), "--data-dir", fmt.Sprintf("%s/m%d", dir, i),
			"--listen-peer-urls", u.peer, "--initial-advertise-peer-urls", u.peer,
			"--listen-client-urls", u.client, "--advertise-client-urls", u.client,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-token", "storetest-ext",
			"--initial-cluster-state", "new", "--heartbeat-interval", "50", "--election-timeout", "500",
			"--logger", "zap", "--log-outputs", "stderr", "--log-level", "error"}
		m := &member{args: args}
		m.cfg = nil
		c.members = append(c.members, m)
		if err := m.startProcess(); err != nil {
			c.Stop()
			return nil, err
		}
		c.clientURLs = append(c.clientURLs, u.client)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.clientURLs, DialTimeout: 5 * time.Second})
	if err != nil {
		c.Stop()
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.WaitLeader(ctx, cli); err != nil {
		c.Stop()
		return nil, fmt.Errorf("etcd processes did not elect a leader: %w", err)
	}
	return c, nil
}

func (m *member) startProcess() error {
	cmd := exec.Command(ExternalBinary(), m.args...)
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	m.proc = cmd
	return nil
}

func (c *Cluster) stopProcess(i int) {
	c.mu.Lock()
	m := c.members[i]
	p := m.proc
	m.proc = nil
	c.mu.Unlock()
	if p != nil {
		_ = p.Process.Kill()
		_ = p.Wait()
	}
}

// externalLeader asks each live process whether it leads (c.mu held).
func (c *Cluster) externalLeader() int {
	for i, m := range c.members {
		if m.proc == nil {
			continue
		}
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.clientURLs[i]}, DialTimeout: time.Second})
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := cli.Status(ctx, c.clientURLs[i])
		cancel()
		_ = cli.Close()
		if err == nil && st.Leader == st.Header.MemberId {
			return i
		}
	}
	return -1
}
