package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/sandbox0/sandbox0d/store/storetest"
)

// Follower reads: three sandbox0d nodes (the built binary, store.type etcd
// on the harness's embedded members) and a single-node bbolt daemon, each
// holding readDeployments; GET /v1/deployments/{id} on a node that does not
// lead, against that node's own GET /livez, next to the same ratio on the
// bbolt daemon.

// clusterPrefix is the nodes' store.etcd.prefix (the fires use another).
const clusterPrefix = "/bench-nodes/"

// startClusterNodes starts n nodes one after another. The first creates the
// cluster's age identity; the others get a copy before they start, as an
// operator gives every node the same identity (docs/cluster.md).
func startClusterNodes(ctx context.Context, h *harness, o options, members *storetest.Cluster, n int) ([]*daemonProc, error) {
	var nodes []*daemonProc
	var first string
	for i := range n {
		dir := h.dir(fmt.Sprintf("node-%d", i))
		if i > 0 {
			if err := shareIdentity(first, dir); err != nil {
				return nodes, err
			}
		}
		p, err := h.start(ctx, daemonConfig{DataDir: dir, Backend: "local", Env: pprofEnv(o, map[string]string{
			"SANDBOX0D_STORE_TYPE":           "etcd",
			"SANDBOX0D_STORE_ETCD_ENDPOINTS": strings.Join(members.Endpoints(), ","),
			"SANDBOX0D_STORE_ETCD_PREFIX":    clusterPrefix,
			"SANDBOX0D_CLUSTER_NODE_NAME":    fmt.Sprintf("node-%d", i),
		})})
		if p != nil {
			nodes = append(nodes, p)
		}
		if err != nil {
			return nodes, fmt.Errorf("start node-%d: %w", i, err)
		}
		if i == 0 {
			first = dir
		}
	}
	return nodes, nil
}

// follower waits until exactly one node leads and returns a node that does not.
func follower(ctx context.Context, nodes []*daemonProc) (*daemonProc, int, error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		leaders, pick := 0, -1
		for i, p := range nodes {
			st, err := status(ctx, p)
			if err != nil {
				break
			}
			if st.Role == "leader" {
				leaders++
			} else if pick < 0 {
				pick = i
			}
		}
		if leaders == 1 && pick >= 0 {
			return nodes[pick], pick, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, 0, errors.New("no single leader among the nodes after 30 s")
}

// readPhase is one daemon's livez and retrieve figures over the runs.
type readPhase struct {
	livez, reads, ratios []float64
	all                  loadResult
}

// measureReads alternates GET /livez and GET /v1/deployments/{id} slices
// on p for one run's phase.
func (ph *readPhase) measure(ctx context.Context, o options, p *daemonProc, ids []string) {
	c := newAPIClient(p.api.base, apiClients*2)
	livez := func(ctx context.Context, _, _ int) error {
		_, err := c.do(ctx, http.MethodGet, "/livez", nil)
		return err
	}
	get := func(ctx context.Context, _, _ int) error {
		_, err := c.do(ctx, http.MethodGet, "/v1/deployments/"+ids[rand.IntN(len(ids))], nil)
		return err
	}
	var f, x loadResult
	for range max(1, int(o.apiPhase/speedSlice)) {
		f = f.merge(runLoad(ctx, apiClients, speedSlice, 0, livez))
		x = x.merge(runLoad(ctx, apiClients, speedSlice, 0, get))
	}
	ph.livez, ph.reads = append(ph.livez, f.rate()), append(ph.reads, x.rate())
	ph.ratios = append(ph.ratios, x.rate()/f.rate())
	ph.all = ph.all.merge(x).merge(f)
}

func followerReads(ctx context.Context, h *harness, o options, sec *section, members *storetest.Cluster) error {
	h.logf("starting three sandbox0d nodes on the etcd members")
	nodes, err := startClusterNodes(ctx, h, o, members, 3)
	defer func() {
		for _, p := range nodes {
			p.kill()
		}
	}()
	if err != nil {
		return err
	}
	single, err := h.start(ctx, daemonConfig{DataDir: h.dir("single"), Backend: "local"})
	if single != nil {
		defer single.kill()
	}
	if err != nil {
		return fmt.Errorf("start the bbolt daemon: %w", err)
	}
	spec := func(i int) deploymentSpec {
		return deploymentSpec{Name: fmt.Sprintf("read-%d", i), Expression: farSchedule(i), Metadata: map[string]string{"bench": "cluster"}}
	}
	h.logf("storing %d deployments through node-0 and through the bbolt daemon", readDeployments)
	clusterSeed, err := seed(ctx, h, newAPIClient(nodes[0].api.base, 32), readDeployments, 16, spec)
	if err != nil {
		return fmt.Errorf("seed the cluster: %w", err)
	}
	singleSeed, err := seed(ctx, h, newAPIClient(single.api.base, 32), readDeployments, 16, spec)
	if err != nil {
		return fmt.Errorf("seed the bbolt daemon: %w", err)
	}
	f, fi, err := follower(ctx, nodes)
	if err != nil {
		return err
	}
	h.logf("node-%d does not lead: reading there", fi)
	// Warm up connections on both.
	var warm readPhase
	warm.measure(ctx, options{apiPhase: speedSlice}, f, clusterSeed.ids)
	warm.measure(ctx, options{apiPhase: speedSlice}, single, singleSeed.ids)

	var onFollower, onSingle readPhase
	for r := range o.runs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// -profile: the follower and this process (which hosts the etcd
		// members) over the last run's follower phase.
		var prof *profileCapture
		stopSelf := func() {}
		if o.profile != "" && r == o.runs-1 {
			prof = f.startProfile(ctx, 2*o.apiPhase, filepath.Join(o.profile, "follower-reads.pprof"))
			stopSelf = startSelfProfile(filepath.Join(o.profile, "follower-reads-etcd.pprof"))
		}
		onFollower.measure(ctx, o, f, clusterSeed.ids)
		stopSelf()
		if prof != nil {
			if err := prof.wait(); err != nil {
				h.logf("  profile: %v", err)
			} else {
				h.logf("  profiles written to %s and follower-reads-etcd.pprof", prof.path)
			}
		}
		onSingle.measure(ctx, o, single, singleSeed.ids)
		h.logf("  run %d retrieve: follower %.0f/s (%.3f × its livez %.0f/s), bbolt node %.0f/s (%.3f × its livez %.0f/s)", r+1,
			onFollower.reads[r], onFollower.ratios[r], onFollower.livez[r], onSingle.reads[r], onSingle.ratios[r], onSingle.livez[r])
	}
	// The follower must still be one: a leader change during the runs
	// would measure another thing.
	st, err := status(ctx, f)
	if err != nil {
		return err
	}
	role := st.Role
	mirror := "off: " + st.ReadMirror.Reason
	if st.ReadMirror.Enabled {
		mirror = fmt.Sprintf("on: %d reads answered from the copy, %d read from etcd because the copy was behind",
			st.ReadMirror.Served, st.ReadMirror.Missed)
	}
	sec.note("Follower reads: %d deployments (daily cron schedules far from now) stored through node-0 of three sandbox0d nodes "+
		"(`store.type: etcd`, default `cluster.lease_ttl`, local backend, one process each), and the same number on a single-node "+
		"bbolt daemon. %d concurrent keep-alive clients alternate `GET /livez` and `GET /v1/deployments/{id}` (a random stored id) "+
		"slices on node-%d, which does not lead (%s at the end), and then on the bbolt daemon; \"× livez\" is the retrieve rate over "+
		"the rate of the livez slices around it on the same daemon. A retrieve on a node waits for one linearizable etcd read shared "+
		"by the reads that arrived before it was sent (the member's ReadIndex, one raft heartbeat round) and is answered from the "+
		"node's read mirror, a watch-fed copy of the deployment documents, once the copy has reached that read's revision "+
		"(docs/cluster.md). The follower's read mirror was %s.",
		readDeployments, apiClients, fi, role, mirror)
	t := table{title: "Reads on a follower", headers: []string{"daemon", "`GET /livez`/s", "retrieve/s", "× livez", "target", "p50", "p99"}}
	target := fmt.Sprintf("≥ %.2f", followerTarget)
	if median(onFollower.ratios) >= followerTarget {
		target += " ✓"
	} else {
		target += " ✗"
	}
	ratio := func(x float64) string { return fmt.Sprintf("%.3f", x) }
	t.add("single node, bbolt", fmtMedianRange(onSingle.livez, fmtRate), fmtMedianRange(onSingle.reads, fmtRate),
		fmtMedianRange(onSingle.ratios, ratio), "", fmtDur(percentile(onSingle.all.lat, 50)), fmtDur(percentile(onSingle.all.lat, 99)))
	t.add(fmt.Sprintf("node-%d of three on etcd (follower)", fi), fmtMedianRange(onFollower.livez, fmtRate), fmtMedianRange(onFollower.reads, fmtRate),
		fmtMedianRange(onFollower.ratios, ratio), target, fmtDur(percentile(onFollower.all.lat, 50)), fmtDur(percentile(onFollower.all.lat, 99)))
	sec.tables = append(sec.tables, t)
	sec.check(checkIf(median(onFollower.ratios) >= followerTarget, fmt.Sprintf("follower retrieve ≥ %.2f × its /livez", followerTarget),
		fmt.Sprintf("median %.3f (bbolt node: %.3f)", median(onFollower.ratios), median(onSingle.ratios))))
	sec.check(checkIf(role == "follower", "the measured node stayed a follower", "role at the end: "+role))
	sec.check(checkIf(st.ReadMirror.Served > 0, "the follower answered reads from its read mirror", mirror))
	errs := onFollower.all.errs + onSingle.all.errs
	detail := "every request answered 2xx"
	if first := errors.Join(onFollower.all.firstErr, onSingle.all.firstErr); first != nil {
		detail = fmt.Sprintf("%d failed; first: %v", errs, first)
	}
	sec.check(checkIf(errs == 0, "no failed read", detail))
	return nil
}
