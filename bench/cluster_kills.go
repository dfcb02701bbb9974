package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandbox0/sandbox0d/internal/fakeupstream"
	"github.com/sandbox0/sandbox0d/store/storetest"
)

// The kill loop of `go run ./bench cluster -kills N` (issue 25): three
// sandbox0d node processes on three etcd processes; the leader node is
// killed with SIGKILL N times around fire minutes while clients write
// through random live nodes, and the etcd raft leader is restarted once;
// then every fire, run, session and acknowledged write is checked through
// the API and the fake upstream's record.

// killParams shape the kill loop.
type killParams struct {
	Kills       int
	EveryMinute int // `* * * * *` deployments seeded
	ManualOnly  int // manual-only deployments seeded
	Writers     int // clients writing through random live nodes
	WritePause  time.Duration
	LeaseTTL    time.Duration
	MaxPause    time.Duration // a killed node is restarted after 0.5 s up to this
	FakeLatency time.Duration // the fake upstream's per-request latency
	Seed        int64
}

// Where a kill lands relative to a minute boundary (:00, when every
// `* * * * *` deployment fires).
type killWindow struct {
	kind     string
	from, to time.Duration // offsets from the boundary
}

var killWindows = []killWindow{
	{"0.5–5 s before :00", -5 * time.Second, -500 * time.Millisecond},
	{"0–3 s after :00", 0, 3 * time.Second},
	{"mid-minute", 15 * time.Second, 45 * time.Second},
}

// killRecord is one SIGKILL of the leader.
type killRecord struct {
	at       time.Time
	kind     string
	offset   time.Duration // from the nearest minute boundary
	node     string
	failover time.Duration // SIGKILL → another node reports itself leader
	pause    time.Duration // SIGKILL → restart of the killed node
	inFlight int64         // client writes unanswered at the kill
}

// nearestBoundary is the minute boundary closest to t and t's offset from it.
func nearestBoundary(t time.Time) (time.Time, time.Duration) {
	b := t.Round(time.Minute)
	return b, t.Sub(b)
}

// nextKill picks the next kill moment: the kind with the fewest kills so
// far among those that can land within 25 s, else the soonest, at a random
// point of its window.
func nextKill(rng *rand.Rand, now time.Time, counts map[string]int) (time.Time, string) {
	earliest := now.Add(300 * time.Millisecond)
	type cand struct {
		from, to time.Time
		kind     string
	}
	var cands []cand
	for _, w := range killWindows {
		for b := now.Truncate(time.Minute); ; b = b.Add(time.Minute) {
			from, to := b.Add(w.from), b.Add(w.to)
			if to.After(earliest) {
				if from.Before(earliest) {
					from = earliest
				}
				cands = append(cands, cand{from, to, w.kind})
				break
			}
		}
	}
	slices.SortFunc(cands, func(a, b cand) int { return a.from.Compare(b.from) })
	pick := cands[0]
	for _, c := range cands {
		if c.from.Sub(now) <= 25*time.Second && counts[c.kind] < counts[pick.kind] {
			pick = c
		}
	}
	span := pick.to.Sub(pick.from)
	return pick.from.Add(time.Duration(rng.Int64N(int64(span) + 1))), pick.kind
}

// killWrites is what the clients sent and what was acknowledged.
type killWrites struct {
	mu       sync.Mutex
	specs    map[string]deploymentSpec // by name: every create sent (and the seeds)
	acked    map[string]string         // deployment id → name, created and acknowledged
	lastW    map[string]int            // deployment id → last acknowledged metadata "w" (-1: none)
	pendingW map[string][]int          // deployment id → "w" values sent after it, unanswered
	runs     map[string]wireRun        // acknowledged manual runs by id
	creates  int
	updates  int
	failed   int // writes not acknowledged (node killed, 503 …)
	inFlight atomic.Int64
}

func (w *killWrites) sent(spec deploymentSpec) {
	w.mu.Lock()
	w.specs[spec.Name] = spec
	w.mu.Unlock()
}

func (w *killWrites) created(d wireDeployment) {
	w.mu.Lock()
	w.acked[d.ID] = d.Name
	w.lastW[d.ID] = -1
	w.creates++
	w.mu.Unlock()
}

// writer makes acknowledged writes through random live nodes until ctx
// ends: creates (one in four `* * * * *`), metadata updates of its own
// deployments (one writer per deployment, so the last acknowledged value
// must be the stored one unless a later unanswered write committed) and
// manual runs.
func writer(ctx context.Context, rig *clusterRig, st *killWrites, own []string, idx int, rng *rand.Rand, pause time.Duration) {
	seq := 0
	for ctx.Err() == nil {
		p := rig.randomLive(rng)
		if p == nil {
			sleepCtx(ctx, 50*time.Millisecond)
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		st.inFlight.Add(1)
		switch op := rng.IntN(4); {
		case op == 0 || len(own) == 0:
			seq++
			spec := deploymentSpec{Name: fmt.Sprintf("kills-w%d-%d", idx, seq), Metadata: map[string]string{"bench": "kills-new"}}
			if seq%4 == 0 {
				spec.Expression = "* * * * *"
			}
			st.sent(spec)
			d, err := p.api.createDeployment(rctx, spec.body())
			if err == nil {
				st.created(d)
				own = append(own, d.ID)
			} else {
				st.mu.Lock()
				st.failed++
				st.mu.Unlock()
			}
		case op <= 2:
			id := own[rng.IntN(len(own))]
			seq++
			st.mu.Lock()
			st.pendingW[id] = append(st.pendingW[id], seq)
			st.mu.Unlock()
			body, _ := json.Marshal(map[string]any{"metadata": map[string]string{"w": strconv.Itoa(seq)}})
			_, err := p.api.do(rctx, http.MethodPost, "/v1/deployments/"+id, body)
			st.mu.Lock()
			if err == nil {
				st.lastW[id], st.pendingW[id] = seq, nil
				st.updates++
			} else {
				st.failed++
			}
			st.mu.Unlock()
		default:
			id := own[rng.IntN(len(own))]
			r, err := p.api.runDeployment(rctx, id)
			st.mu.Lock()
			if err == nil {
				st.runs[r.ID] = r
			} else {
				st.failed++
			}
			st.mu.Unlock()
		}
		st.inFlight.Add(-1)
		cancel()
		sleepCtx(ctx, pause)
	}
}

// edgeCreator creates three `* * * * *` deployments through random live
// nodes 0–50 ms before each minute boundary: their commit lands around
// the boundary, so the leader often learns of one through its watch after
// the boundary, and must still fire it at that boundary (as a single node
// does: its creation planned it).
func edgeCreator(ctx context.Context, rig *clusterRig, st *killWrites, rng *rand.Rand) {
	n := 0
	for ctx.Err() == nil {
		next := time.Now().Truncate(time.Minute).Add(time.Minute)
		if !sleepUntil(ctx, next.Add(-50*time.Millisecond)) {
			return
		}
		var wg sync.WaitGroup
		for range 3 {
			n++
			spec := deploymentSpec{Name: fmt.Sprintf("kills-edge-%d", n), Expression: "* * * * *", Metadata: map[string]string{"bench": "kills-edge"}}
			at := next.Add(-time.Duration(rng.IntN(50)) * time.Millisecond)
			p := rig.randomLive(rng)
			if p == nil {
				continue
			}
			st.sent(spec)
			wg.Go(func() {
				sleepUntil(ctx, at)
				rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				defer cancel()
				st.inFlight.Add(1)
				d, err := p.api.createDeployment(rctx, spec.body())
				st.inFlight.Add(-1)
				if err == nil {
					st.created(d)
				} else {
					st.mu.Lock()
					st.failed++
					st.mu.Unlock()
				}
			})
		}
		wg.Wait()
		sleepUntil(ctx, next.Add(time.Second))
	}
}

// Invariant names of the kill loop.
const (
	invKillFires    = "every (deployment, scheduled_at) due while a node was up has a run (misfire grace 1m)"
	invKillOnce     = "no (deployment, scheduled_at) has two runs; no run listed twice"
	invKillHasRun   = "every session created upstream has its run recorded"
	invKillSession  = "every run that names a session names the one created for it"
	invKillNoDup    = "no run created two sessions"
	invKillResolved = "every run resolved from a killed leader's intent whose session got its initial events names that session"
	invKillTokens   = "every session received its deployment's token"
	invKillCreates  = "every acknowledged create present and intact, nothing foreign"
	invKillUpdates  = "every acknowledged update present (the last acknowledged value, or a later unanswered one)"
	invKillManual   = "every acknowledged manual run recorded as answered"
	invKillFailover = "a new leader after every kill (within 60 s)"
)

// runClusterKills adds the kill loop's invariants and failover times to sec.
func runClusterKills(ctx context.Context, h *harness, o options, sec *section) {
	seed := o.seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	h.logf("cluster kills: seed %d (rerun with -seed %d)", seed, seed)
	kp := killParams{Kills: o.kills, EveryMinute: 30, ManualOnly: 10, Writers: 2, WritePause: 150 * time.Millisecond,
		LeaseTTL: 4 * time.Second, MaxPause: 5 * time.Second, FakeLatency: 50 * time.Millisecond, Seed: seed}
	rig, err := newClusterRig(ctx, h, rigParams{Nodes: 3, LeaseTTL: kp.LeaseTTL, FakeLatency: kp.FakeLatency,
		Env: map[string]string{"SANDBOX0D_UPSTREAM_REQUEST_TIMEOUT": "10s"}})
	if err != nil {
		sec.abort(fmt.Errorf("cluster kill loop: %w", err))
		return
	}
	defer rig.close()
	if err := killLoop(ctx, h, rig, kp, sec); err != nil {
		sec.abort(fmt.Errorf("cluster kill loop: %w", err))
	}
}

func killLoop(ctx context.Context, h *harness, rig *clusterRig, kp killParams, sec *section) error {
	started := time.Now()
	rng := rand.New(rand.NewPCG(uint64(kp.Seed), 0x4b11))
	st := &killWrites{specs: map[string]deploymentSpec{}, acked: map[string]string{}, lastW: map[string]int{},
		pendingW: map[string][]int{}, runs: map[string]wireRun{}}
	inv := newInvariantLog(invKillFires, invKillOnce, invKillHasRun, invKillSession, invKillNoDup, invKillTokens,
		invKillCreates, invKillUpdates, invKillManual, invKillFailover, invKillResolved)

	// Seed through node-0.
	seedN := kp.EveryMinute + kp.ManualOnly
	res, err := seed(ctx, h, rig.nodes[0].live().api, seedN, 8, func(i int) deploymentSpec {
		s := deploymentSpec{Name: fmt.Sprintf("kills-seed-%d", i), Metadata: map[string]string{"bench": "kills", "i": fmt.Sprint(i)}}
		if i < kp.EveryMinute {
			s.Expression = "* * * * *"
		}
		if i%2 == 0 {
			s.RepoToken = fmt.Sprintf("ghp_kills_seed_%d", i)
		}
		st.sent(s)
		return s
	})
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	owned := make([][]string, kp.Writers)
	for i, id := range res.ids {
		st.mu.Lock()
		st.acked[id] = fmt.Sprintf("kills-seed-%d", i)
		st.lastW[id] = -1
		st.mu.Unlock()
		owned[i%kp.Writers] = append(owned[i%kp.Writers], id)
	}
	h.logf("cluster kills: seeded %d deployments (%d every minute); %d kills", seedN, kp.EveryMinute, kp.Kills)

	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var load sync.WaitGroup
	for w := range kp.Writers {
		wrng := rand.New(rand.NewPCG(rng.Uint64(), uint64(w)))
		load.Go(func() { writer(loadCtx, rig, st, owned[w], w, wrng, kp.WritePause) })
	}
	erng := rand.New(rand.NewPCG(rng.Uint64(), 99))
	load.Go(func() { edgeCreator(loadCtx, rig, st, erng) })

	var (
		kills     []killRecord
		counts    = map[string]int{}
		restarts  sync.WaitGroup
		restartMu sync.Mutex
		restartEr error
		etcdAt    time.Time
		etcdIdx   = -1
		etcdOff   time.Duration
	)
	for len(kills) < kp.Kills {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		restartMu.Lock()
		rerr := restartEr
		restartMu.Unlock()
		if rerr != nil {
			return rerr
		}
		if etcdIdx < 0 && len(kills) >= kp.Kills/2 {
			// The etcd raft leader killed 3 s before a boundary and back 3 s
			// later: the boundary's fires go through a raft election.
			b := time.Now().Truncate(time.Minute).Add(time.Minute)
			if time.Until(b) < 5*time.Second {
				b = b.Add(time.Minute)
			}
			sleepUntil(ctx, b.Add(-3*time.Second))
			etcdAt = time.Now()
			_, etcdOff = nearestBoundary(etcdAt)
			if etcdIdx, err = rig.restartEtcdLeader(ctx, 3*time.Second); err != nil {
				return err
			}
			h.logf("cluster kills: etcd raft leader m%d killed at :00%+.1fs and restarted after 3 s", etcdIdx, etcdOff.Seconds())
		}
		if _, err := rig.awaitLeader(ctx, 2*time.Minute); err != nil {
			return err
		}
		at, kind := nextKill(rng, time.Now(), counts)
		if !sleepUntil(ctx, at) {
			return ctx.Err()
		}
		lead, err := rig.awaitLeader(ctx, 10*time.Second)
		if err != nil {
			return err
		}
		rec := killRecord{kind: kind, node: lead.name, inFlight: st.inFlight.Load()}
		rec.at = time.Now()
		_, rec.offset = nearestBoundary(rec.at)
		lead.kill()
		// Failover: until a live process other than the killed one
		// reports itself leader.
		deadline := rec.at.Add(60 * time.Second)
		for rec.failover == 0 && time.Now().Before(deadline) && ctx.Err() == nil {
			for _, n := range rig.nodes {
				if p := n.live(); p != nil && reportsLeader(ctx, p) {
					rec.failover = time.Since(rec.at)
					break
				}
			}
			if rec.failover == 0 {
				sleepCtx(ctx, 20*time.Millisecond)
			}
		}
		if rec.failover == 0 {
			inv.checked(invKillFailover, fmt.Sprintf("no leader within 60 s of killing %s at %s", rec.node, rec.at.Format(time.TimeOnly)))
		} else {
			inv.checked(invKillFailover)
		}
		rec.pause = 500*time.Millisecond + time.Duration(rng.Int64N(int64(kp.MaxPause-500*time.Millisecond)))
		restarts.Go(func() {
			sleepUntil(ctx, rec.at.Add(rec.pause))
			if err := rig.start(ctx, lead); err != nil && ctx.Err() == nil {
				restartMu.Lock()
				restartEr = err
				restartMu.Unlock()
			}
		})
		counts[kind]++
		kills = append(kills, rec)
		h.logf("cluster kills: %d/%d killed leader %s at :00%+.1fs (%s); failover %s; restart after %s",
			len(kills), kp.Kills, rec.node, rec.offset.Seconds(), kind, fmtDur(rec.failover), fmtDur(rec.pause))
	}
	restarts.Wait()
	if restartEr != nil {
		return restartEr
	}
	stopLoad()
	load.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	lead, err := rig.awaitLeader(ctx, 2*time.Minute)
	if err != nil {
		return err
	}
	// Let the next boundary fire with every node up, then read everything
	// at 25 s past it, when no fire is in flight.
	upTo := time.Now().Truncate(time.Minute).Add(time.Minute)
	h.logf("cluster kills: loop done; leader %s; checking at %s", lead.name, upTo.Add(25*time.Second).Format(time.TimeOnly))
	if !sleepUntil(ctx, upTo.Add(25*time.Second)) {
		return ctx.Err()
	}
	settle(rig.fake)
	sessions := rig.fake.Sessions()
	p := lead.live()
	if p == nil {
		return errors.New("the leader died during the final check")
	}
	runs, err := p.api.allRuns(ctx, url.Values{})
	if err != nil {
		return err
	}
	listed, err := p.api.allDeployments(ctx)
	if err != nil {
		return err
	}

	fc := checkKillFires(inv, st, runs, listed, upTo)
	if err := explainMissing(ctx, h, p, runs, sessions); err != nil {
		return err
	}
	checkKillSessions(inv, st, runs, listed, sessions, prompted(rig.fake), &fc)
	fc.writesLost = checkKillWrites(inv, st, runs, listed)
	lateness := boundaryLateness(runs, kills, etcdAt, started, upTo)

	etcdBinary := "Debian's etcd-server binary"
	if os.Getenv("SANDBOX0D_ETCD_BINARY") != "" {
		etcdBinary = "built from this module by bench/etcdserver, `SANDBOX0D_ETCD_BINARY`"
	}
	mirror := "read mirror: status unavailable"
	var served, missed uint64
	on := 0
	for _, n := range rig.nodes {
		if q := n.live(); q != nil {
			if st, err := status(ctx, q); err == nil {
				if st.ReadMirror.Enabled {
					on++
					served, missed = served+st.ReadMirror.Served, missed+st.ReadMirror.Missed
				} else {
					mirror = "read mirror off: " + st.ReadMirror.Reason
				}
			}
		}
	}
	if on > 0 {
		mirror = fmt.Sprintf("read mirror on (%d live nodes: %d reads answered from the copy since their last start, %d read from etcd because the copy was behind)", on, served, missed)
	}
	sec.note("Kill loop setup: three etcd %s processes (%s, heartbeat 50 ms, election 500 ms; %s) "+
		"and three sandbox0d processes of the built binary on them (`store.type: etcd`, each its own data_dir, socket and "+
		"TCP listener, `cluster.lease_ttl: %s`, `schedule.misfire_grace: 1m`), the same age identity copied to each. "+
		"Backend: upstream, the strict fake with %s latency per request, because it is one service that records every "+
		"session with its run id whichever node created it and whether or not that node lived to record the run. Seed %d.",
		storetest.ExternalVersion(), etcdBinary, mirror, kp.LeaseTTL, kp.FakeLatency, kp.Seed)
	sec.note("Workload: %d `* * * * *` deployments and %d manual-only ones seeded (half with a repository token); "+
		"during the loop %d clients write through random live nodes (creates, one in four `* * * * *`; metadata "+
		"updates; manual runs; %s apart), and three `* * * * *` deployments are created 0–50 ms before each minute boundary "+
		"(the leader learns of it after the boundary, through its watch).", kp.EveryMinute, kp.ManualOnly, kp.Writers, kp.WritePause)
	sec.note("Loop: the leader node (found by `GET /admin/cluster` on the sockets: the node whose role is leader, named "+
		"by the others) is killed with SIGKILL at a moment aimed 0.5–5 s before a minute boundary, 0–3 s after one, or "+
		"mid-minute (the kind with the fewest kills so far), and restarted on its data dir after 0.5–%s. Failover is "+
		"the time from SIGKILL until another node's `sandbox0d_cluster_leader` gauge reads 1 (polled every 20 ms). "+
		"Halfway, the etcd raft leader's process is killed with SIGKILL 3 s before a boundary and restarted 3 s later. "+
		"At the end every node is up; the runs, deployments and the upstream's sessions are read 25 s after the next "+
		"boundary.", kp.MaxPause)

	kt := table{title: "Kills", headers: []string{"kind", "kills", "failover p50", "failover p99", "max"}}
	byKind := map[string][]time.Duration{}
	var all []time.Duration
	for _, k := range kills {
		if k.failover > 0 {
			byKind[k.kind] = append(byKind[k.kind], k.failover)
			all = append(all, k.failover)
		}
	}
	for _, w := range killWindows {
		ds := byKind[w.kind]
		kt.add(w.kind, fmt.Sprint(counts[w.kind]), fmtDur(percentile(ds, 50)), fmtDur(percentile(ds, 99)), fmtDur(percentile(ds, 100)))
	}
	kt.add("**all**", fmt.Sprint(len(kills)), fmtDur(percentile(all, 50)), fmtDur(percentile(all, 99)), fmtDur(percentile(all, 100)))
	sec.tables = append(sec.tables, kt)

	lt := table{title: "Fire lateness per minute boundary (last run of the boundary recorded, after :00)",
		headers: []string{"boundaries", "count", "p50", "p99", "max"}}
	for _, g := range lateness {
		lt.add(g.name, fmt.Sprint(len(g.ds)), fmtDur(percentile(g.ds, 50)), fmtDur(percentile(g.ds, 99)), fmtDur(percentile(g.ds, 100)))
	}
	sec.tables = append(sec.tables, lt)

	ft := table{title: "Fires and runs", headers: []string{"fires expected", "found", "missing", "duplicates",
		"scheduled runs", "manual runs", "runs resolved by a new leader to their session", "… as unknown_error (interrupted)",
		"of them with a session upstream", "of those with its initial events", "sessions upstream"}}
	ft.add(fmt.Sprint(fc.expected), fmt.Sprint(fc.found), fmt.Sprint(fc.missing), fmt.Sprint(fc.duplicates),
		fmt.Sprint(fc.scheduled), fmt.Sprint(fc.manual), fmt.Sprint(rig.logCount("resolved an interrupted run to the session it created")),
		fmt.Sprint(fc.interrupted), fmt.Sprint(fc.orphans), fmt.Sprint(fc.prompted), fmt.Sprint(len(sessions)))
	sec.tables = append(sec.tables, ft)

	st.mu.Lock()
	wt := table{title: "Acknowledged writes", headers: []string{"creates acknowledged", "updates acknowledged", "manual runs acknowledged", "present", "writes not answered"}}
	acked := st.creates + st.updates + len(st.runs)
	wt.add(fmt.Sprint(st.creates), fmt.Sprint(st.updates), fmt.Sprint(len(st.runs)), fmt.Sprint(acked-fc.writesLost), fmt.Sprint(st.failed))
	st.mu.Unlock()
	sec.tables = append(sec.tables, wt)

	dt := table{title: "Each kill", headers: []string{"#", "node", "at", "kind", "failover", "restarted after", "writes in flight"}}
	for i, k := range kills {
		dt.add(fmt.Sprint(i+1), k.node, fmt.Sprintf(":00%+.1fs", k.offset.Seconds()), k.kind, fmtDur(k.failover), fmtDur(k.pause), fmt.Sprint(k.inFlight))
	}
	sec.tables = append(sec.tables, dt)
	if etcdIdx >= 0 {
		sec.note("etcd: member m%d (the raft leader) killed at :00%+.1fs and restarted 3 s later.", etcdIdx, etcdOff.Seconds())
	}
	sec.note("Daemon logs: %d scheduled fires failed to record; %d runs resolved by a new leader from the intents of a "+
		"killed one. The new leader looks for each run's session upstream (the agent's recent sessions, by the run id in "+
		"their metadata) and records a session that got its initial events as the run's success; a session not found, one "+
		"without its initial events (the leader died in between) or a failed lookup records `unknown_error` (\"the daemon "+
		"stopped during session creation …\"). No session is ever created a second time.",
		rig.logCount("scheduled fire failed to record"), rig.logSum("resolved intents left by nodes whose lease expired", "runs"))
	sec.check(checkIf(len(kills) >= kp.Kills, fmt.Sprintf("the %d leader kills asked for (the issue asks for at least 20)", kp.Kills), fmt.Sprintf("%d kills", len(kills))))
	sec.check(checkIf(etcdIdx >= 0, "an etcd member (the raft leader) restarted during the loop", fmt.Sprintf("member m%d", etcdIdx)))
	sec.checks = append(sec.checks, inv.results()...)
	sec.check(fakeCleanCheck(rig.fake))
	h.logf("cluster kills: done in %s", time.Since(started).Round(time.Second))
	return nil
}

// killCounts are the fire and run counts of the final check.
type killCounts struct {
	expected, found, missing, duplicates int
	scheduled, manual                    int
	interrupted, orphans                 int
	prompted                             int // orphans whose session got its initial events
	writesLost                           int
}

// checkKillFires checks every (deployment, boundary) of a `* * * * *`
// deployment from the first boundary after its creation up to upTo: one
// run each. No node set was ever all down, and failovers are far shorter
// than the misfire grace, so every such fire is due.
func checkKillFires(inv *invariantLog, st *killWrites, runs []wireRun, listed []wireDeployment, upTo time.Time) killCounts {
	var fc killCounts
	fires := map[fireKey][]string{}
	seen := map[string]bool{}
	var twice []string
	for _, r := range runs {
		if seen[r.ID] {
			twice = append(twice, "run "+r.ID+" listed twice")
		}
		seen[r.ID] = true
		if r.TriggerContext.Type == "schedule" {
			fc.scheduled++
			k := fireKey{r.DeploymentID, r.scheduledAt().UnixNano()}
			fires[k] = append(fires[k], r.ID)
		} else {
			fc.manual++
		}
	}
	for k, ids := range fires {
		if len(ids) > 1 {
			fc.duplicates += len(ids) - 1
			twice = append(twice, fmt.Sprintf("%s at %s: %v", k.deploymentID, time.Unix(0, k.scheduledAt).UTC().Format(time.TimeOnly), ids))
		}
	}
	inv.checked(invKillOnce, twice...)
	var lost []string
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, d := range listed {
		if st.specs[d.Name].Expression != "* * * * *" {
			continue
		}
		created, err := time.Parse(time.RFC3339Nano, d.CreatedAt)
		if err != nil {
			lost = append(lost, fmt.Sprintf("deployment %s created_at %q: %v", d.ID, d.CreatedAt, err))
			continue
		}
		for b := created.Truncate(time.Minute).Add(time.Minute); !b.After(upTo); b = b.Add(time.Minute) {
			fc.expected++
			if len(fires[fireKey{d.ID, b.UnixNano()}]) == 0 {
				fc.missing++
				lost = append(lost, fmt.Sprintf("%s (%s, created %s) has no run for %s", d.ID, d.Name, created.Format("15:04:05.000"), b.Format(time.TimeOnly)))
			} else {
				fc.found++
			}
		}
	}
	inv.checked(invKillFires, lost...)
	return fc
}

// checkKillSessions compares the upstream's sessions with the runs.
func checkKillSessions(inv *invariantLog, st *killWrites, runs []wireRun, listed []wireDeployment, sessions []fakeupstream.Session,
	prompted func(sessionID string) bool, fc *killCounts) {
	byID := map[string]wireRun{}
	for _, r := range runs {
		byID[r.ID] = r
	}
	names := map[string]string{}
	for _, d := range listed {
		names[d.ID] = d.Name
	}
	byRun := map[string][]fakeupstream.Session{}
	var noRun, tokens []string
	for _, s := range sessions {
		runID := s.Metadata[fakeupstream.MetadataRunID]
		byRun[runID] = append(byRun[runID], s)
		if _, ok := byID[runID]; !ok {
			noRun = append(noRun, fmt.Sprintf("session %s (run %s) has no recorded run", s.ID, runID))
		}
		st.mu.Lock()
		want := st.specs[names[s.Metadata[fakeupstream.MetadataDeploymentID]]].RepoToken
		st.mu.Unlock()
		got := ""
		if len(s.Resources) > 0 {
			got = s.Resources[0].AuthorizationToken
		}
		if got != want {
			tokens = append(tokens, fmt.Sprintf("session %s got token %q, want %q", s.ID, got, want))
		}
	}
	inv.checked(invKillHasRun, noRun...)
	inv.checked(invKillTokens, tokens...)
	var dups, wrong, unresolved []string
	for runID, ss := range byRun {
		if len(ss) > 1 {
			dups = append(dups, fmt.Sprintf("run %s: %d sessions", runID, len(ss)))
		}
	}
	inv.checked(invKillNoDup, dups...)
	for _, r := range runs {
		if r.SessionID == nil || *r.SessionID == "" {
			if r.errorType() == "unknown_error" {
				fc.interrupted++
				if ss := byRun[r.ID]; len(ss) > 0 {
					fc.orphans++
					if prompted(ss[0].ID) {
						fc.prompted++
						unresolved = append(unresolved, fmt.Sprintf("run %s recorded unknown_error; its session %s got its initial events", r.ID, ss[0].ID))
					}
				}
			}
			continue
		}
		ss := byRun[r.ID]
		if len(ss) == 0 || ss[0].ID != *r.SessionID {
			wrong = append(wrong, fmt.Sprintf("run %s names session %s, which the upstream did not create for it", r.ID, *r.SessionID))
		}
	}
	inv.checked(invKillSession, wrong...)
	inv.checked(invKillResolved, unresolved...)
}

// prompted reports whether a session upstream holds a user.message: its
// run's initial events arrived (a deployment's always start with one).
func prompted(fake *fakeupstream.Server) func(string) bool {
	return func(id string) bool {
		for _, e := range fake.Events(id) {
			if e.Type == "user.message" {
				return true
			}
		}
		return false
	}
}

// checkKillWrites checks every acknowledged write against the listings.
func checkKillWrites(inv *invariantLog, st *killWrites, runs []wireRun, listed []wireDeployment) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	var badCreate, badUpdate, badRun []string
	seen := map[string]wireDeployment{}
	for _, d := range listed {
		seen[d.ID] = d
		spec, ok := st.specs[d.Name]
		if !ok {
			badCreate = append(badCreate, fmt.Sprintf("deployment %s (%q) was never sent", d.ID, d.Name))
			continue
		}
		if name, acked := st.acked[d.ID]; acked && name != d.Name {
			badCreate = append(badCreate, fmt.Sprintf("deployment %s renamed %q → %q", d.ID, name, d.Name))
		}
		w := d.Metadata["w"]
		delete(d.Metadata, "w")
		if problem := compareDeployment(d, spec); problem != "" {
			badCreate = append(badCreate, fmt.Sprintf("deployment %s: %s", d.ID, problem))
		}
		last, acked := st.lastW[d.ID]
		if !acked {
			continue // a create in flight at a kill that was committed
		}
		okW := last < 0 && w == "" || w == strconv.Itoa(last)
		for _, p := range st.pendingW[d.ID] {
			okW = okW || w == strconv.Itoa(p)
		}
		if !okW {
			badUpdate = append(badUpdate, fmt.Sprintf("deployment %s has w=%q; last acknowledged %d, unanswered since %v", d.ID, w, last, st.pendingW[d.ID]))
		}
	}
	lost := 0
	for id := range st.acked {
		if _, ok := seen[id]; !ok {
			lost++
			badCreate = append(badCreate, fmt.Sprintf("acknowledged deployment %s is missing", id))
		}
	}
	byID := map[string]wireRun{}
	for _, r := range runs {
		byID[r.ID] = r
	}
	for id, r := range st.runs {
		got, ok := byID[id]
		switch {
		case !ok:
			lost++
			badRun = append(badRun, "run "+id+" missing")
		case got.errorType() != r.errorType() || got.DeploymentID != r.DeploymentID ||
			(r.SessionID != nil) != (got.SessionID != nil) || r.SessionID != nil && *r.SessionID != *got.SessionID:
			lost++
			badRun = append(badRun, fmt.Sprintf("run %s changed since it was answered (error %q → %q)", id, r.errorType(), got.errorType()))
		}
	}
	lost += len(badUpdate)
	inv.checked(invKillCreates, badCreate...)
	inv.checked(invKillUpdates, badUpdate...)
	inv.checked(invKillManual, badRun...)
	return lost
}

// latenessGroup is the fire lateness of a group of minute boundaries.
type latenessGroup struct {
	name string
	ds   []time.Duration
}

// boundaryLateness is, for each minute boundary of the loop, how long after
// :00 its last scheduled run was recorded, grouped by what happened near it.
func boundaryLateness(runs []wireRun, kills []killRecord, etcdAt, from, upTo time.Time) []latenessGroup {
	last := map[int64]time.Time{} // by the boundary's unix nanoseconds
	for _, r := range runs {
		if r.TriggerContext.Type != "schedule" {
			continue
		}
		b := r.scheduledAt().UnixNano()
		if c := r.createdAt(); c.After(last[b]) {
			last[b] = c
		}
	}
	groups := []latenessGroup{{name: "leader killed 0–5 s before, or 0–3 s after"}, {name: "etcd raft leader restarted 3 s before"}, {name: "no kill near"}}
	for b := from.Truncate(time.Minute).Add(time.Minute); !b.After(upTo); b = b.Add(time.Minute) {
		l, ok := last[b.UnixNano()]
		if !ok {
			continue
		}
		g := 2
		if !etcdAt.IsZero() && etcdAt.After(b.Add(-10*time.Second)) && etcdAt.Before(b.Add(5*time.Second)) {
			g = 1
		} else {
			for _, k := range kills {
				if k.at.After(b.Add(-5*time.Second)) && k.at.Before(b.Add(3*time.Second)) {
					g = 0
				}
			}
		}
		groups[g].ds = append(groups[g].ds, l.Sub(b))
	}
	return groups
}

// explainMissing looks up, by id, each run a session names that the run
// listing lacks, and logs what it finds: a run the listing skipped, or one
// never recorded (with the session's creation time).
func explainMissing(ctx context.Context, h *harness, p *daemonProc, runs []wireRun, sessions []fakeupstream.Session) error {
	listed := map[string]bool{}
	for _, r := range runs {
		listed[r.ID] = true
	}
	shown := 0
	for _, s := range sessions {
		id := s.Metadata[fakeupstream.MetadataRunID]
		if listed[id] {
			continue
		}
		var r wireRun
		err := p.api.doJSON(ctx, http.MethodGet, "/v1/deployment_runs/"+id, nil, &r)
		var se *apiStatusError
		switch {
		case err == nil:
			h.logf("cluster kills: run %s (session %s) is not in the listing but GET finds it: created %s scheduled %v", id, s.ID, r.CreatedAt, r.TriggerContext.ScheduledAt)
		case errors.As(err, &se) && se.Status == http.StatusNotFound:
			if shown < 20 {
				h.logf("cluster kills: run %s of session %s (deployment %s, session created %s) was never recorded",
					id, s.ID, s.Metadata[fakeupstream.MetadataDeploymentID], s.CreatedAt.Format("15:04:05.000"))
			}
			shown++
		default:
			return err
		}
	}
	return nil
}
