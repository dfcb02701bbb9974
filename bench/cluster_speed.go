package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/store/storetest"
)

// The cluster's speed (issue 25, "Speed"), as ratios to single-node bbolt
// figures measured in the same run:
//
//   - fenced fires: the fire transaction (the leader's fence, the fire's
//     claim, its intent, a 2 KiB document) from 64 concurrent writers
//     through group commit, on a three-member etcd cluster and on a bbolt
//     file, in alternating slices so both see the same machine load;
//   - follower reads: GET /v1/deployments/{id} on a sandbox0d node that does
//     not lead, as a ratio to that node's GET /livez, next to the same ratio
//     on a single-node bbolt daemon.
//
// The etcd members are embedded in the harness process (store/storetest);
// the sandbox0d nodes are the built binary.

const (
	fireWriters = 64 // as the scheduler's default burst and BenchmarkFencedFires
	// fireTarget and followerTarget are the targets.
	fireTarget     = 1000.0
	followerTarget = 0.5
	// readDeployments are stored before the read measurement.
	readDeployments = 2000
	speedSlice      = 500 * time.Millisecond
)

func runClusterSpeed(ctx context.Context, h *harness, o options, sec *section) {
	h.logf("starting three embedded etcd members (fsync on)")
	members, err := storetest.StartIn(h.dir("etcd"), 3)
	if err != nil {
		sec.abort(fmt.Errorf("start etcd: %w", err))
		return
	}
	defer members.Stop()
	sec.note("Setup: three etcd v3.7 members embedded in the harness process (loopback, fsync on, one data directory each on the same disk), "+
		"the sandbox0d binary built from this tree, the harness's load generator: all on the machine below. Each figure alternates "+
		"%s slices of the two things it compares, so both see the same load; ratios are per run, medians of %d runs (min–max).",
		speedSlice, o.runs)
	if err := clusterFires(ctx, h, o, sec, members); err != nil {
		sec.abort(err)
		return
	}
	if err := followerReads(ctx, h, o, sec, members); err != nil {
		sec.abort(err)
	}
}

// fireDoc is the document a fire moves on (2 KiB, as in BenchmarkFencedFires).
var fireDoc = `{"id":"x","pad":"` + strings.Repeat("p", 2048) + `"}`

// fireOp is one fire's transaction on st, fenced by fence. Every call
// claims a new (deployment, scheduled_at).
func fireOp(st *store.Store, fence store.Fence, next *atomic.Int64) func(ctx context.Context, _, _ int) error {
	return func(ctx context.Context, _, _ int) error {
		i := next.Add(1)
		id := fmt.Sprintf("d%06d", i%1000)
		runID := fmt.Sprintf("r%012d", i)
		return st.Write(func(tx *store.Tx) error {
			if err := tx.RequireFence(fence); err != nil {
				return err
			}
			if err := tx.ClaimScheduledFire(id, time.Unix(i, 0), runID); err != nil {
				return err
			}
			if err := tx.PutIntent(runID, []byte(fireDoc[:200])); err != nil {
				return err
			}
			return tx.PutAPIKey(store.APIKey{ID: id, Name: fireDoc})
		})
	}
}

// clusterFires measures fenced fires per second on etcd and on bbolt.
func clusterFires(ctx context.Context, h *harness, o options, sec *section, members *storetest.Cluster) error {
	bolt, err := store.Open(filepath.Join(h.dir("fires-bbolt"), store.FileName), store.Options{})
	if err != nil {
		return fmt.Errorf("open bbolt: %w", err)
	}
	defer bolt.Close()
	etcd, err := store.OpenEtcd(store.EtcdOptions{Endpoints: members.Endpoints(), Prefix: "/bench-fires/"})
	if err != nil {
		return err
	}
	defer etcd.Close()
	// The fence is a real leader's: this process wins the election of the
	// bench prefix and fires under it, as the scheduler does.
	cl, err := etcd.Cluster(store.ClusterOptions{Node: "bench"})
	if err != nil {
		return err
	}
	fences := make(chan store.Fence, 1)
	leadCtx, stopLead := context.WithCancel(ctx)
	defer stopLead()
	go cl.Lead(leadCtx, func(term context.Context, f store.Fence) {
		fences <- f
		<-term.Done()
	})
	var fence store.Fence
	select {
	case fence = <-fences:
	case <-time.After(30 * time.Second):
		return errors.New("the bench did not win the election of an empty prefix in 30 s")
	case <-ctx.Done():
		return ctx.Err()
	}
	var next atomic.Int64
	boltOp, etcdOp := fireOp(bolt, store.Fence{}, &next), fireOp(etcd, fence, &next)
	h.logf("warming up both stores")
	runLoad(ctx, fireWriters, time.Second, 0, boltOp)
	runLoad(ctx, fireWriters, time.Second, 0, etcdOp)

	slices := max(1, int(o.apiPhase/speedSlice))
	var boltAll, etcdAll loadResult
	var boltRates, etcdRates, ratios []float64
	for r := range o.runs {
		var b, e loadResult
		for range slices {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b = b.merge(runLoad(ctx, fireWriters, speedSlice, 0, boltOp))
			e = e.merge(runLoad(ctx, fireWriters, speedSlice, 0, etcdOp))
		}
		boltRates, etcdRates = append(boltRates, b.rate()), append(etcdRates, e.rate())
		ratios = append(ratios, e.rate()/b.rate())
		boltAll, etcdAll = boltAll.merge(b), etcdAll.merge(e)
		h.logf("  run %d fenced fires: bbolt %.0f/s, etcd %.0f/s (%.3f × bbolt), p99 %s / %s", r+1, b.rate(), e.rate(),
			e.rate()/b.rate(), fmtDur(percentile(b.lat, 99)), fmtDur(percentile(e.lat, 99)))
	}
	sec.note("Fenced fires: one fire is one `store.Write` of what the scheduler's fire commits: the leader's fence "+
		"(etcd: `CreateRevision(election key) == rev`, the election won by the harness under its own prefix), the fire's "+
		"claim (new each time), its intent (200 B) and a 2 KiB document, from %d concurrent writers through group commit, "+
		"%s per run on each store in alternating %s slices; bbolt: one file, fsync on. It is the store's share of a fire, "+
		"not a whole fire (no session is created).", fireWriters, time.Duration(slices)*speedSlice, speedSlice)
	t := table{title: "Fenced fires", headers: []string{"store", "fires/s", "× bbolt", "target", "p50", "p99", "errors"}}
	target := fmt.Sprintf("≥ %.0f/s", fireTarget)
	if median(etcdRates) >= fireTarget {
		target += " ✓"
	} else {
		target += " ✗"
	}
	t.add("bbolt file (one node)", fmtMedianRange(boltRates, fmtRate), "1", "", fmtDur(percentile(boltAll.lat, 50)),
		fmtDur(percentile(boltAll.lat, 99)), fmt.Sprint(boltAll.errs))
	t.add("etcd, three members", fmtMedianRange(etcdRates, fmtRate), fmtMedianRange(ratios, func(x float64) string { return fmt.Sprintf("%.3f", x) }),
		target, fmtDur(percentile(etcdAll.lat, 50)), fmtDur(percentile(etcdAll.lat, 99)), fmt.Sprint(etcdAll.errs))
	sec.tables = append(sec.tables, t)
	sec.check(checkIf(median(etcdRates) >= fireTarget, fmt.Sprintf("fenced fires on etcd ≥ %.0f/s", fireTarget),
		fmt.Sprintf("median %.0f/s", median(etcdRates))))
	detail := "every fire committed"
	if first := errors.Join(boltAll.firstErr, etcdAll.firstErr); first != nil {
		detail = fmt.Sprintf("%d failed; first: %v", boltAll.errs+etcdAll.errs, first)
	}
	sec.check(checkIf(boltAll.errs+etcdAll.errs == 0, "no fenced fire refused or failed", detail))
	return nil
}
