package daemon

import (
	"context"
	"time"

	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/schedule"
	"github.com/sandbox0/sandbox0d/store"
)

// Cluster mode (store.type etcd, issue 25): every node serves the API; the
// nodes elect one leader through etcd, and only the leader runs the timer
// loop. Each leadership term gets a scheduler of its own (a timer loop runs
// once): it loads every plan from the store, fires what was missed within
// schedule.misfire_grace, follows changes made on any node through a watch
// of the deployments, and fences every fire's claim with the term's fence.

// runScheduler runs the timer loop: always on bbolt, while leading on etcd.
func (d *Daemon) runScheduler(ctx context.Context) error {
	if d.store.Engine() != "etcd" {
		return d.sched.Run(ctx)
	}
	cfg := d.config()
	cl, err := d.store.Cluster(store.ClusterOptions{Node: cfg.Cluster.NodeName, AdvertiseURL: cfg.Cluster.AdvertiseURL,
		LeaseTTL: cfg.Cluster.LeaseTTL, Logger: d.log, OnLease: d.svc.SetWriter})
	if err != nil {
		return err
	}
	d.clusterMu.Lock()
	d.cluster = cl
	d.clusterMu.Unlock()
	cl.Lead(ctx, func(term context.Context, fence store.Fence) { d.leaderTerm(term, cl, fence) })
	return nil
}

// currentLoop is the timer loop that runs now: the startup scheduler's on
// bbolt; on etcd the current leadership term's, nil while this node does not
// lead. (The startup scheduler on etcd loads the plans but never runs: its
// heap is not what fires.)
func (d *Daemon) currentLoop() *schedule.Loop {
	if d.store.Engine() != "etcd" {
		return d.sched.Loop()
	}
	if sc := d.termSched.Load(); sc != nil {
		return sc.Loop()
	}
	return nil
}

// firesInFlight counts the fires of the running loop (for the shutdown log).
func (d *Daemon) firesInFlight() int {
	if l := d.currentLoop(); l != nil {
		return l.InFlight()
	}
	return 0
}

// leaderTerm is one leadership term.
func (d *Daemon) leaderTerm(ctx context.Context, cl *store.Cluster, fence store.Fence) {
	cfg := d.config()
	defer d.leadWebhooks(ctx)() // cluster_webhooks.go
	d.svc.SetFence(fence)
	// A deposed node's fence stays set: its fires keep failing on it until
	// it leads again with a new one.
	sc := deployments.NewScheduler(d.svc, deployments.SchedulerConfig{
		Workers:      cfg.Schedule.Workers,
		Jitter:       cfg.Schedule.Jitter,
		MisfireGrace: cfg.Schedule.MisfireGrace,
		Observe:      d.metrics.observeFire,
	})
	// The watch first, then the load: a change committed in between is
	// seen twice, which planning tolerates (generations), never missed.
	reload := func() {
		if _, err := sc.Load(); err != nil {
			d.log.Error("cluster: reloading plans failed", "error", err)
		}
	}
	for {
		err := d.store.WatchDeployments(ctx, func(doc []byte) {
			if err := d.svc.StoredDeploymentChanged(doc); err != nil {
				d.log.Warn("cluster: a changed deployment could not be planned", "error", err)
			}
		}, reload)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		d.log.Warn("cluster: watching deployments failed; retrying", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	// Intents of nodes whose lease expired (they died between an intent and
	// its record) are resolved by the leader; a live node's are its own.
	if n, err := d.svc.RecoverIntentsOfDeadWriters(cl.LeaseExpired); err != nil {
		d.log.Error("cluster: resolving intents of dead nodes failed", "error", err)
	} else if n > 0 {
		d.log.Warn("cluster: resolved intents left by nodes whose lease expired", "runs", n)
	}
	stats, err := sc.Load()
	if err != nil {
		d.log.Error("cluster: loading plans failed; stepping down", "error", err)
		return
	}
	d.termSched.Store(sc)
	defer d.termSched.Store(nil)
	d.log.Info("cluster: leader loaded plans", "scheduled", stats.Scheduled, "misfires_run", stats.MisfiresRun, "misfires_skipped", stats.MisfiresSkipped)
	_ = sc.Run(ctx)
}
