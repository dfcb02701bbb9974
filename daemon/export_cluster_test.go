package daemon

import (
	"context"
	"time"

	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/sessions/local"
)

// Test hooks of cluster mode.

// IsClusterLeader reports whether this node leads.
func (d *Daemon) IsClusterLeader() bool {
	d.clusterMu.Lock()
	defer d.clusterMu.Unlock()
	return d.cluster != nil && d.cluster.IsLeader()
}

// TermLoaded reports whether this node leads and its term's plans are loaded.
func (d *Daemon) TermLoaded() bool { return d.IsClusterLeader() && d.termSched.Load() != nil }

// WakeScheduler makes the leader's timer loop look at the (fake) clock again.
func (d *Daemon) WakeScheduler() {
	if sc := d.termSched.Load(); sc != nil {
		sc.Loop().Wake()
	}
}

// CrashStore closes the node's etcd client under it, as a killed process
// would: its lease is not revoked and lapses by itself.
func (d *Daemon) CrashStore() { _ = d.store.Close() }

// Fire runs one scheduled fire through this node's service (a paused
// leader waking up).
func (d *Daemon) Fire(id string, at time.Time, generation uint64) (deployments.FireResult, error) {
	return d.svc.Fire(context.Background(), id, at, generation, nil)
}

// ClusterLease is the lease this node holds (0: none).
func (d *Daemon) ClusterLease() int64 {
	d.clusterMu.Lock()
	defer d.clusterMu.Unlock()
	if d.cluster == nil {
		return 0
	}
	return d.cluster.LeaseID()
}

// NodeNameForTest is cluster.node_name.
func (d *Daemon) NodeNameForTest() string { return d.config().Cluster.NodeName }

// MarkLostSessions runs one pass of the leader's lost-node marking with the
// given liveness (issue 26).
func (d *Daemon) MarkLostSessions(live func(node string) bool) ([]string, error) {
	return local.MarkLost(d.node.index, live, time.Now(), d.config().Cluster.LeaseTTL, d.hooks.Enabled())
}

// PublishLoad publishes this node's load now (issue 26), instead of at the
// next quarter lease.
func (d *Daemon) PublishLoad() { d.publishLoad(context.Background(), "") }

// CrashSessionFile closes this node's own session file under it (issue
// 26), as a killed process leaves it: whatever the shutdown would record
// about its running turns (their end, their webhook events) is never
// written, so the restart finds them running.
func (d *Daemon) CrashSessionFile() { d.node.close() }

// IndexPending is how many of this node's session changes wait for their
// copy in the cluster's session index (issue 26).
func (d *Daemon) IndexPending() (int, error) { return d.backend.(*local.Backend).IndexPending() }
