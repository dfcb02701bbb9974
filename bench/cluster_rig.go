package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sandbox0/sandbox0d/internal/fakeupstream"
	"github.com/sandbox0/sandbox0d/store/storetest"
)

// clusterRig is a cluster as an operator runs it on one box: three etcd
// processes (the etcd binary on PATH: Debian's etcd-server, 3.4) and
// sandbox0d nodes as processes of the built binary on them, each with its
// own data_dir, socket and TCP listener, all on the strict fake upstream.
// The nodes use the upstream backend: one service that records every
// session it created with its run id, whichever node created it and
// whether or not that node lived to record the run, so the harness can
// account for sessions and runs across nodes and kills from one place.
type clusterRig struct {
	h     *harness
	etcd  *storetest.Cluster
	fake  *fakeupstream.Server
	nodes []*rigNode

	mu    sync.Mutex
	procs []*daemonProc // every process the nodes ran
}

// rigNode is one sandbox0d node: a name, a fixed listener (its
// advertise_url stays valid across restarts) and a data_dir, and the
// process running it now (nil while it is down or not ready).
type rigNode struct {
	name string
	cfg  daemonConfig

	mu   sync.Mutex
	proc *daemonProc
}

// rigParams shape the cluster.
type rigParams struct {
	Nodes       int
	LeaseTTL    time.Duration
	FakeLatency time.Duration
	Env         map[string]string // more SANDBOX0D_* settings for every node
}

// etcdPrefix is the install's prefix in the bench's etcd cluster.
const etcdPrefix = "/bench-cluster/"

func newClusterRig(ctx context.Context, h *harness, rp rigParams) (*clusterRig, error) {
	if storetest.ExternalBinary() == "" {
		return nil, errors.New("no etcd binary on PATH: the cluster scenario runs etcd as processes (apt-get install etcd-server)")
	}
	rig := &clusterRig{h: h}
	var err error
	for attempt := range 3 { // a port found free can be taken before etcd binds it
		if rig.etcd, err = storetest.StartExternalIn(filepath.Join(h.dir("etcd"), fmt.Sprint(attempt)), 3); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("start three etcd processes: %w", err)
	}
	h.logf("cluster: etcd %s (3 processes) at %s", storetest.ExternalVersion(), strings.Join(rig.etcd.Endpoints(), ","))
	if rig.fake, err = startFake(rp.FakeLatency); err != nil {
		rig.close()
		return nil, err
	}
	for i := range rp.Nodes {
		addr, err := freePort()
		if err != nil {
			rig.close()
			return nil, err
		}
		name := fmt.Sprintf("node-%d", i)
		env := map[string]string{
			"SANDBOX0D_STORE_TYPE":            "etcd",
			"SANDBOX0D_STORE_ETCD_ENDPOINTS":  strings.Join(rig.etcd.Endpoints(), ","),
			"SANDBOX0D_STORE_ETCD_PREFIX":     etcdPrefix,
			"SANDBOX0D_CLUSTER_NODE_NAME":     name,
			"SANDBOX0D_CLUSTER_ADVERTISE_URL": "http://" + addr,
			"SANDBOX0D_CLUSTER_LEASE_TTL":     rp.LeaseTTL.String(),
		}
		for k, v := range rp.Env {
			env[k] = v
		}
		rig.nodes = append(rig.nodes, &rigNode{name: name, cfg: daemonConfig{DataDir: h.dir(name), Addr: addr,
			UpstreamURL: rig.fake.URL, UpstreamKey: rig.fake.APIKey(), Backend: "upstream", Env: env}})
	}
	// The first node makes the age identity; the others get a copy, as an
	// operator installs the same identity file on every node (docs/cluster.md).
	if err := rig.start(ctx, rig.nodes[0]); err != nil {
		rig.close()
		return nil, err
	}
	for _, n := range rig.nodes[1:] {
		if err := shareIdentity(rig.nodes[0].cfg.DataDir, n.cfg.DataDir); err != nil {
			rig.close()
			return nil, err
		}
		if err := rig.start(ctx, n); err != nil {
			rig.close()
			return nil, err
		}
	}
	return rig, nil
}

// shareIdentity copies the age identity the node in dataDir made into
// another node's data dir before its first start, as an operator installs
// the same identity file on every node (docs/cluster.md).
func shareIdentity(dataDir, otherDataDir string) error {
	const identityFile = "keys/identity.age.txt"
	data, err := os.ReadFile(filepath.Join(dataDir, identityFile))
	if err != nil {
		return fmt.Errorf("the first node's age identity: %w", err)
	}
	path := filepath.Join(otherDataDir, identityFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// start execs n's daemon and waits for /readyz.
func (rig *clusterRig) start(ctx context.Context, n *rigNode) error {
	p, err := rig.h.spawn(n.cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", n.name, err)
	}
	if err := p.awaitReady(ctx); err != nil {
		p.kill()
		return fmt.Errorf("%s: %w", n.name, err)
	}
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
	rig.mu.Lock()
	rig.procs = append(rig.procs, p)
	rig.mu.Unlock()
	return nil
}

// live is n's ready process, or nil.
func (n *rigNode) live() *daemonProc {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil || !n.proc.alive() {
		return nil
	}
	return n.proc
}

// kill sends SIGKILL to n's process and returns when it is gone.
func (n *rigNode) kill() {
	n.mu.Lock()
	p := n.proc
	n.proc = nil
	n.mu.Unlock()
	if p != nil {
		p.kill()
	}
}

// randomLive picks a live node's process at random (nil if none).
func (rig *clusterRig) randomLive(rng *rand.Rand) *daemonProc {
	var live []*daemonProc
	for _, n := range rig.nodes {
		if p := n.live(); p != nil {
			live = append(live, p)
		}
	}
	if len(live) == 0 {
		return nil
	}
	return live[rng.IntN(len(live))]
}

// rigStatus is the part of GET /admin/cluster the harness reads.
type rigStatus struct {
	Node       string `json:"node"`
	Role       string `json:"role"`
	Leader     string `json:"leader"`
	ReadMirror struct {
		Enabled bool   `json:"enabled"`
		Reason  string `json:"reason"`
		Served  uint64 `json:"served"`
		Missed  uint64 `json:"missed"`
	} `json:"read_mirror"`
}

// status asks p's admin socket for GET /admin/cluster.
func status(ctx context.Context, p *daemonProc) (rigStatus, error) {
	var st rigStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://sandbox0d/admin/cluster", nil)
	if err != nil {
		return st, err
	}
	resp, err := p.admin.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /admin/cluster: %d", resp.StatusCode)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// leader finds the node whose process reports itself leader on its admin
// socket (GET /admin/cluster, role), when exactly one does and the others
// name it.
func (rig *clusterRig) leader(ctx context.Context) (*rigNode, error) {
	var lead *rigNode
	var named []string
	for _, n := range rig.nodes {
		p := n.live()
		if p == nil {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		st, err := status(sctx, p)
		cancel()
		if err != nil {
			continue
		}
		named = append(named, st.Leader)
		if st.Role == "leader" {
			if lead != nil {
				return nil, fmt.Errorf("two nodes report themselves leader: %s and %s", lead.name, n.name)
			}
			lead = n
		}
	}
	if lead == nil {
		return nil, errors.New("no node reports itself leader")
	}
	for _, name := range named {
		if name != lead.name {
			return nil, fmt.Errorf("%s leads but a node names %q", lead.name, name)
		}
	}
	return lead, nil
}

// awaitLeader waits (bounded) until rig.leader finds one.
func (rig *clusterRig) awaitLeader(ctx context.Context, within time.Duration) (*rigNode, error) {
	deadline := time.Now().Add(within)
	for {
		lead, err := rig.leader(ctx)
		if err == nil {
			return lead, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no leader within %s: %w", within, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// reportsLeader reads p's sandbox0d_cluster_leader gauge (cheap: no etcd
// call, so it can be polled every few milliseconds during a failover).
func reportsLeader(ctx context.Context, p *daemonProc) bool {
	mctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	ms, err := p.api.metrics(mctx)
	return err == nil && ms.sum("sandbox0d_cluster_leader", nil) == 1
}

// restartEtcdLeader kills the etcd raft leader's process with SIGKILL,
// leaves it down for down, and starts it again on its data. It returns
// the member's index.
func (rig *clusterRig) restartEtcdLeader(ctx context.Context, down time.Duration) (int, error) {
	i := rig.etcd.Leader()
	if i < 0 {
		return -1, errors.New("no etcd member reports itself raft leader")
	}
	rig.etcd.StopMember(i)
	select {
	case <-ctx.Done():
	case <-time.After(down):
	}
	if err := rig.etcd.RestartMember(i); err != nil {
		return i, fmt.Errorf("restart etcd member %d: %w", i, err)
	}
	return i, nil
}

// logCount counts lines with every substring over every process a node ran.
func (rig *clusterRig) logCount(substrs ...string) int {
	rig.mu.Lock()
	procs := append([]*daemonProc(nil), rig.procs...)
	rig.mu.Unlock()
	n := 0
	for _, p := range procs {
		n += p.logCount(substrs...)
	}
	return n
}

// logSum adds up a numeric attribute over every process a node ran
// (daemonProc.logSum).
func (rig *clusterRig) logSum(msg, key string) int {
	rig.mu.Lock()
	procs := append([]*daemonProc(nil), rig.procs...)
	rig.mu.Unlock()
	n := 0
	for _, p := range procs {
		n += p.logSum(msg, key)
	}
	return n
}

func (rig *clusterRig) close() {
	for _, n := range rig.nodes {
		if p := n.live(); p != nil {
			_ = p.stop(30 * time.Second)
		}
		n.kill()
	}
	if rig.fake != nil {
		rig.fake.Close()
	}
	if rig.etcd != nil {
		rig.etcd.Stop()
	}
}
