package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandbox0/sandbox0d/internal/fakeupstream"
)

// crashParams shape one crash test.
type crashParams struct {
	Kills         int           // kill -9 cycles
	EveryMinute   int           // `* * * * *` deployments seeded (scheduled fires each minute)
	ManualOnly    int           // manual-only deployments seeded
	ManualClients int           // concurrent clients posting manual runs
	Creators      int           // concurrent clients creating deployments
	MaxAlive      time.Duration // a daemon lives up to this long after READY before it is killed
	AimBoundaries bool          // aim some kills just after a minute boundary (mid scheduled burst)
	MinAimed      int           // with AimBoundaries, keep cycling (up to twice Kills) until this many kills were aimed
	StartupKills  bool          // kill some daemons before READY (during recovery and loading)
	Seed          int64
	Env           map[string]string // daemon settings
}

// crashEnv is how the crash test reaches daemons and the upstream.
type crashEnv struct {
	spawn func(cfg daemonConfig) (*daemonProc, error)
	fake  *fakeupstream.Server
	dir   string // data directory (reused across restarts)
	logf  func(format string, args ...any)
}

// crashReport is what the crash test observed.
type crashReport struct {
	checks         []check
	kills          int
	startupKills   int
	midWriteKills  int // kills after READY that landed while a client's write was unanswered
	boundaryKills  int
	minutesCrossed int
	manualAcked    int
	createsAcked   int
	recovered      int // intents resolved at startup (from daemon logs)
	orphanSessions int // sessions upstream whose run was recorded as interrupted
	runs           map[string]int
	sessions       int
	firesChecked   int // (deployment, minute) pairs checked for a lost fire
	readyIn        []time.Duration
	took           time.Duration
}

// invariantLog collects violations per invariant and how often each was checked.
type invariantLog struct {
	mu     sync.Mutex
	order  []string
	checks map[string]int
	bad    map[string][]string
}

func newInvariantLog(names ...string) *invariantLog {
	l := &invariantLog{checks: map[string]int{}, bad: map[string][]string{}, order: names}
	return l
}

// checked records one evaluation of invariant name with its violations.
func (l *invariantLog) checked(name string, violations ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.checks[name]++
	l.bad[name] = append(l.bad[name], violations...)
}

func (l *invariantLog) results() []check {
	var out []check
	for _, name := range l.order {
		n, bad := l.checks[name], l.bad[name]
		switch {
		case n == 0:
			out = append(out, fail(name, "never checked"))
		case len(bad) == 0:
			out = append(out, pass(name, fmt.Sprintf("held in %d checks", n)))
		default:
			ex := bad
			if len(ex) > 3 {
				ex = ex[:3]
			}
			out = append(out, fail(name, fmt.Sprintf("%d violations in %d checks; e.g. %s", len(bad), n, strings.Join(ex, "; "))))
		}
	}
	return out
}

// Invariant names of the crash test.
const (
	invBolt       = "bbolt consistency check clean (data file after each kill -9, every backup, final file)"
	invIntents    = "no intent left unresolved after startup"
	invIntact     = "every deployment intact (acknowledged creates present and unchanged, nothing foreign, all active)"
	invDurable    = "every acknowledged manual run recorded as answered"
	invOneFire    = "at most one run per (deployment, scheduled_at) (store and API)"
	invClaims     = "runs, fire claims and intents agree"
	invHasRun     = "every session created upstream has its run recorded"
	invSessionIDs = "a run's session_id is the session created for that run"
	invNoDup      = "no session created twice upstream"
	invTokens     = "every session received its deployment's token"
	invRace       = "no daemon reported a data race (the CI variant runs race-enabled daemons)"
	invNoLoss     = "no scheduled fire lost: every every-minute deployment has a run for each minute boundary since its creation (misfire grace 1m)"
)

// crashState is what the harness knows was acknowledged.
type crashState struct {
	mu       sync.Mutex
	specs    map[string]deploymentSpec // by name: everything ever sent
	acked    map[string]string         // deployment id → name, for 200 answers
	ackedIDs []string
	runs     map[string]wireRun // acknowledged manual runs by id
	creates  atomic.Int64
	inFlight atomic.Int64 // manual runs and creates sent and not yet answered
}

func (s *crashState) want(spec deploymentSpec) {
	s.mu.Lock()
	s.specs[spec.Name] = spec
	s.mu.Unlock()
}

func (s *crashState) ack(id, name string) {
	s.mu.Lock()
	s.acked[id] = name
	s.ackedIDs = append(s.ackedIDs, id)
	s.mu.Unlock()
}

func (s *crashState) pick(rng *rand.Rand) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ackedIDs) == 0 {
		return ""
	}
	return s.ackedIDs[rng.IntN(len(s.ackedIDs))]
}

// crashTest runs the kill -9 loop and checks every invariant after each
// restart and at the end.
func crashTest(ctx context.Context, env crashEnv, cp crashParams) (*crashReport, error) {
	started := time.Now()
	rep := &crashReport{runs: map[string]int{}}
	names := []string{invBolt, invIntents, invIntact, invDurable, invOneFire, invClaims, invHasRun, invSessionIDs, invNoDup, invTokens, invRace}
	if cp.EveryMinute > 0 {
		names = append(names, invNoLoss)
	}
	inv := newInvariantLog(names...)
	raceCheck := func(p *daemonProc) {
		if n := p.logCount("WARNING: DATA RACE"); n > 0 {
			inv.checked(invRace, fmt.Sprintf("%d races in %s", n, p.logPath))
			return
		}
		inv.checked(invRace)
	}
	rng := rand.New(rand.NewPCG(uint64(cp.Seed), 0x5eed))
	st := &crashState{specs: map[string]deploymentSpec{}, acked: map[string]string{}, runs: map[string]wireRun{}}
	cfg := daemonConfig{DataDir: env.dir, UpstreamURL: env.fake.URL, UpstreamKey: env.fake.APIKey(), Env: cp.Env}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg.Addr = addr

	start := func() (*daemonProc, error) {
		p, err := env.spawn(cfg)
		if err != nil {
			return nil, err
		}
		if err := p.awaitReady(ctx); err != nil {
			p.kill()
			return nil, err
		}
		rep.readyIn = append(rep.readyIn, p.readyIn)
		return p, nil
	}

	// Seed: every-minute deployments and manual-only ones, half with a token.
	p, err := start()
	if err != nil {
		return nil, err
	}
	seedN := cp.EveryMinute + cp.ManualOnly
	if _, err := seed(ctx, nil, p.api, seedN, 16, func(i int) deploymentSpec {
		s := deploymentSpec{Name: fmt.Sprintf("crash-seed-%d", i), Metadata: map[string]string{"bench": "crash", "i": fmt.Sprint(i)}}
		if i < cp.EveryMinute {
			s.Expression = "* * * * *"
		}
		if i%2 == 0 {
			s.RepoToken = fmt.Sprintf("ghp_crash_seed_%d", i)
		}
		st.want(s)
		return s
	}); err != nil {
		p.kill()
		return nil, fmt.Errorf("seed: %w", err)
	}
	all, err := p.api.allDeployments(ctx)
	if err != nil {
		p.kill()
		return nil, err
	}
	for _, d := range all {
		st.ack(d.ID, d.Name)
	}
	env.logf("crash: seeded %d deployments (%d every minute); %d kill cycles, seed %d", len(all), cp.EveryMinute, cp.Kills, cp.Seed)
	firstMinute := time.Now().Truncate(time.Minute)

	var lastSessions []fakeupstream.Session
	for cycle := 0; cycle < cp.Kills || (cp.AimBoundaries && rep.boundaryKills < cp.MinAimed && cycle < 2*cp.Kills); cycle++ {
		if ctx.Err() != nil {
			p.kill()
			return nil, ctx.Err()
		}
		// Load: manual runs and creates until the kill.
		loadCtx, stopLoad := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for w := range cp.ManualClients {
			wrng := rand.New(rand.NewPCG(rng.Uint64(), uint64(w)))
			wg.Go(func() { manualRunner(loadCtx, p.api, st, wrng) })
		}
		for range cp.Creators {
			wg.Go(func() { creator(loadCtx, p.api, st) })
		}
		alive, aimed := killDelay(rng, cp)
		if aimed {
			rep.boundaryKills++
		}
		select {
		case <-time.After(alive):
		case <-ctx.Done():
		}
		if st.inFlight.Load() > 0 {
			rep.midWriteKills++
		}
		p.kill()
		rep.kills++
		stopLoad()
		wg.Wait()
		raceCheck(p)

		// The upstream may still be finishing a creation the dead daemon sent.
		settle(env.fake)
		lastSessions = env.fake.Sessions()
		checkFile(inv, p.dbPath())

		if cp.StartupKills && rng.IntN(5) == 0 {
			// Kill the next daemon before READY: during intent recovery or loading.
			q, err := env.spawn(cfg)
			if err != nil {
				return nil, err
			}
			d := time.Duration(rng.Int64N(int64(max(medianDuration(rep.readyIn), 50*time.Millisecond))))
			time.Sleep(d)
			q.kill()
			raceCheck(q)
			rep.kills++
			rep.startupKills++
			cycle++
			settle(env.fake)
			lastSessions = env.fake.Sessions()
			checkFile(inv, q.dbPath())
		}

		if p, err = start(); err != nil {
			return nil, err
		}
		rep.recovered += p.logSum("resolved run intents left by a previous process", "runs")
		if err := afterStartup(ctx, p, env, st, inv, lastSessions, cycle); err != nil {
			p.kill()
			return nil, err
		}
	}

	// Final: let the last daemon finish the fires due before it started
	// (misfires) and at any boundary since, then check everything against
	// the upstream's record.
	const fireSettle = 20 * time.Second
	if cp.EveryMinute > 0 {
		sleepUntil(ctx, p.startedAt.Add(fireSettle))
	}
	checkedUpTo := time.Now().Add(-fireSettle)
	runs, err := p.api.allRuns(ctx, url.Values{})
	if err != nil {
		p.kill()
		return nil, err
	}
	apiFires := map[fireKey][]string{}
	for _, r := range runs {
		rep.runs[r.TriggerContext.Type]++
		if r.TriggerContext.Type == "schedule" {
			k := fireKey{r.DeploymentID, r.scheduledAt().UnixNano()}
			apiFires[k] = append(apiFires[k], r.ID)
		}
	}
	var dupAPI []string
	for k, ids := range apiFires {
		if len(ids) > 1 {
			dupAPI = append(dupAPI, fmt.Sprintf("%s at %s: %v", k.deploymentID, time.Unix(0, k.scheduledAt).UTC().Format(time.RFC3339), ids))
		}
	}
	inv.checked(invOneFire, dupAPI...)
	if cp.EveryMinute > 0 {
		lost, n, err := lostFires(ctx, p, st, apiFires, checkedUpTo)
		rep.firesChecked = n
		if err != nil {
			p.kill()
			return nil, err
		}
		inv.checked(invNoLoss, lost...)
	}
	if err := p.stop(time.Minute); err != nil {
		inv.checked(invIntents, "final graceful shutdown: "+err.Error())
	}
	raceCheck(p)
	settle(env.fake)
	final, err := scanDB(p.dbPath())
	if err != nil {
		return nil, err
	}
	inv.checked(invBolt, errStrings(final.checkErrs)...)
	var leftover []string
	for _, in := range final.intents {
		leftover = append(leftover, "after graceful shutdown: intent "+in.ID)
	}
	inv.checked(invIntents, leftover...)
	inv.checked(invOneFire, final.duplicateFires...)
	inv.checked(invClaims, final.problems...)
	sessions := env.fake.Sessions()
	rep.sessions = len(sessions)
	checkSessions(inv, st, final, sessions, rep)
	rep.manualAcked = len(st.runs)
	rep.createsAcked = int(st.creates.Load())
	rep.minutesCrossed = int(time.Now().Truncate(time.Minute).Sub(firstMinute) / time.Minute)
	rep.checks = inv.results()
	rep.took = time.Since(started)
	return rep, nil
}

// lostFires lists the minute boundaries up to upTo at which an every-minute
// deployment that existed then has no scheduled run.
func lostFires(ctx context.Context, p *daemonProc, st *crashState, fires map[fireKey][]string, upTo time.Time) (lost []string, checked int, err error) {
	listed, err := p.api.allDeployments(ctx)
	if err != nil {
		return nil, 0, err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, d := range listed {
		if st.specs[d.Name].Expression != "* * * * *" {
			continue
		}
		created, err := time.Parse(time.RFC3339Nano, d.CreatedAt)
		if err != nil {
			return nil, 0, fmt.Errorf("deployment %s created_at %q: %w", d.ID, d.CreatedAt, err)
		}
		for b := created.Truncate(time.Minute).Add(time.Minute); !b.After(upTo); b = b.Add(time.Minute) {
			checked++
			if len(fires[fireKey{d.ID, b.UnixNano()}]) == 0 {
				lost = append(lost, fmt.Sprintf("%s has no run for %s", d.ID, b.UTC().Format(time.RFC3339)))
			}
		}
	}
	return lost, checked, nil
}

// killDelay picks how long a daemon lives after READY. With AimBoundaries,
// a minute boundary close ahead is targeted (0–3 s after it, while the
// every-minute deployments fire) more often than chance would.
func killDelay(rng *rand.Rand, cp crashParams) (time.Duration, bool) {
	d := 100*time.Millisecond + time.Duration(rng.Int64N(int64(cp.MaxAlive)))
	if !cp.AimBoundaries {
		return d, false
	}
	now := time.Now()
	toBoundary := now.Truncate(time.Minute).Add(time.Minute).Sub(now)
	if toBoundary < 20*time.Second && rng.IntN(10) < 6 {
		return toBoundary + time.Duration(rng.Int64N(int64(3*time.Second))), true
	}
	return d, false
}

// settle waits (bounded) until the upstream has no creation in flight.
func settle(f *fakeupstream.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = f.AwaitNoCreatesInFlight(ctx)
}

// checkFile runs bbolt's check on the file a killed daemon left.
func checkFile(inv *invariantLog, path string) {
	s, err := scanDB(path)
	if err != nil {
		inv.checked(invBolt, "data file after kill: "+err.Error())
		return
	}
	inv.checked(invBolt, errStrings(s.checkErrs)...)
	inv.checked(invClaims, s.problems...)
	inv.checked(invOneFire, s.duplicateFires...)
}

func errStrings(errs []error) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

// afterStartup checks a freshly started daemon: a backup taken at once,
// the deployments through the API, acknowledged runs, and the sessions the
// upstream had when the previous daemon died.
func afterStartup(ctx context.Context, p *daemonProc, env crashEnv, st *crashState, inv *invariantLog, sessions []fakeupstream.Session, cycle int) error {
	file := filepath.Join(env.dir, fmt.Sprintf("backup-%03d.db", cycle))
	if err := p.backup(ctx, file); err != nil {
		return err
	}
	s, err := scanDB(file)
	if err != nil {
		inv.checked(invBolt, "backup: "+err.Error())
		return nil
	}
	inv.checked(invBolt, errStrings(s.checkErrs)...)
	inv.checked(invClaims, s.problems...)
	inv.checked(invOneFire, s.duplicateFires...)
	// Intents in the backup may belong to fires this process started (a
	// misfire runs at startup); one older than the process was left over.
	var left []string
	for _, in := range s.intents {
		if in.CreatedAt.Before(p.startedAt) {
			left = append(left, fmt.Sprintf("intent %s (%s, created %s) survived startup", in.ID, in.Trigger, in.CreatedAt.Format(time.RFC3339Nano)))
		}
	}
	inv.checked(invIntents, left...)

	// Acknowledged manual runs are recorded as they were answered.
	st.mu.Lock()
	var lost []string
	for id, r := range st.runs {
		got, ok := s.runs[id]
		switch {
		case !ok:
			lost = append(lost, "run "+id+" missing")
		case got.errorType() != r.errorType() || (r.SessionID != nil && got.SessionID != *r.SessionID):
			lost = append(lost, fmt.Sprintf("run %s changed: session %q error %q", id, got.SessionID, got.errorType()))
		}
	}
	st.mu.Unlock()
	inv.checked(invDurable, lost...)

	// Every session the upstream created before the kill has its run.
	var noRun []string
	for _, sess := range sessions {
		runID := sess.Metadata[fakeupstream.MetadataRunID]
		if _, ok := s.runs[runID]; !ok {
			noRun = append(noRun, fmt.Sprintf("session %s (run %s) has no recorded run", sess.ID, runID))
		}
	}
	inv.checked(invHasRun, noRun...)

	return checkDeployments(ctx, p, st, inv)
}

// checkDeployments lists every deployment and compares it with what was sent.
func checkDeployments(ctx context.Context, p *daemonProc, st *crashState, inv *invariantLog) error {
	listed, err := p.api.allDeployments(ctx)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	var bad []string
	seen := map[string]bool{}
	for _, d := range listed {
		seen[d.ID] = true
		spec, ok := st.specs[d.Name]
		if !ok {
			bad = append(bad, fmt.Sprintf("deployment %s (%q) was never sent", d.ID, d.Name))
			continue
		}
		if name, acked := st.acked[d.ID]; acked && name != d.Name {
			bad = append(bad, fmt.Sprintf("deployment %s renamed %q → %q", d.ID, name, d.Name))
		}
		if problem := compareDeployment(d, spec); problem != "" {
			bad = append(bad, fmt.Sprintf("deployment %s: %s", d.ID, problem))
		}
		if _, acked := st.acked[d.ID]; !acked {
			// A create in flight at the kill that was committed: adopt it.
			st.acked[d.ID] = d.Name
			st.ackedIDs = append(st.ackedIDs, d.ID)
		}
	}
	for id := range st.acked {
		if !seen[id] {
			bad = append(bad, fmt.Sprintf("acknowledged deployment %s is missing", id))
		}
	}
	inv.checked(invIntact, bad...)
	return nil
}

func compareDeployment(d wireDeployment, spec deploymentSpec) string {
	switch {
	case d.Agent.ID != benchAgent || d.Agent.Version != 1 || d.EnvironmentID != benchEnv:
		return fmt.Sprintf("agent %s v%d env %s", d.Agent.ID, d.Agent.Version, d.EnvironmentID)
	case d.Status != "active":
		reason := ""
		if d.PausedReason != nil && d.PausedReason.Error != nil {
			reason = " (" + d.PausedReason.Error.Type + ")"
		}
		return "status " + d.Status + reason
	case (d.Schedule == nil) != (spec.Expression == ""):
		return "schedule presence changed"
	case d.Schedule != nil && (d.Schedule.Expression != spec.Expression || d.Schedule.Timezone != "UTC"):
		return fmt.Sprintf("schedule %q %q", d.Schedule.Expression, d.Schedule.Timezone)
	case len(d.Resources) != btoi(spec.RepoToken != ""):
		return fmt.Sprintf("%d resources", len(d.Resources))
	}
	for k, v := range spec.Metadata {
		if d.Metadata[k] != v {
			return fmt.Sprintf("metadata %s=%q", k, d.Metadata[k])
		}
	}
	if len(d.Metadata) != len(spec.Metadata) {
		return fmt.Sprintf("%d metadata keys", len(d.Metadata))
	}
	return ""
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkSessions compares every session the upstream created with the final
// database.
func checkSessions(inv *invariantLog, st *crashState, final *dbScan, sessions []fakeupstream.Session, rep *crashReport) {
	byRun := map[string][]fakeupstream.Session{}
	var noRun, tokens []string
	for _, sess := range sessions {
		runID := sess.Metadata[fakeupstream.MetadataRunID]
		byRun[runID] = append(byRun[runID], sess)
		run, ok := final.runs[runID]
		if !ok {
			noRun = append(noRun, fmt.Sprintf("session %s (run %s) has no recorded run", sess.ID, runID))
		} else if run.SessionID == "" {
			rep.orphanSessions++ // created, then the daemon died: the run says so
		}
		st.mu.Lock()
		spec := st.specs[st.acked[sess.Metadata[fakeupstream.MetadataDeploymentID]]]
		st.mu.Unlock()
		got := ""
		if len(sess.Resources) > 0 {
			got = sess.Resources[0].AuthorizationToken
		}
		if got != spec.RepoToken {
			tokens = append(tokens, fmt.Sprintf("session %s got token %q, want %q", sess.ID, got, spec.RepoToken))
		}
	}
	inv.checked(invHasRun, noRun...)
	inv.checked(invTokens, tokens...)
	var dups []string
	for runID, ss := range byRun {
		if len(ss) > 1 {
			dups = append(dups, fmt.Sprintf("run %s: %d sessions", runID, len(ss)))
		}
	}
	inv.checked(invNoDup, dups...)
	var mismatch []string
	for _, r := range final.runs {
		if r.SessionID == "" {
			continue
		}
		ss := byRun[r.ID]
		if len(ss) == 0 || ss[0].ID != r.SessionID {
			mismatch = append(mismatch, fmt.Sprintf("run %s names session %s, which the upstream did not create for it", r.ID, r.SessionID))
		}
	}
	inv.checked(invSessionIDs, mismatch...)
}

// manualRunner posts manual runs on random deployments until ctx ends and
// remembers every answered run.
func manualRunner(ctx context.Context, c *apiClient, st *crashState, rng *rand.Rand) {
	for ctx.Err() == nil {
		id := st.pick(rng)
		if id == "" {
			return
		}
		st.inFlight.Add(1)
		r, err := c.runDeployment(ctx, id)
		st.inFlight.Add(-1)
		if err != nil {
			var se *apiStatusError
			if ctx.Err() != nil || !errors.As(err, &se) {
				return // killed, or the daemon is gone
			}
			// An answer we did not expect is not an invariant here (the
			// listing checks are); do not spin on it.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		st.mu.Lock()
		st.runs[r.ID] = r
		st.mu.Unlock()
	}
}

// creatorSeq numbers deployments created during the crash cycles.
var creatorSeq atomic.Int64

// creator creates manual-only deployments until ctx ends; half carry a
// token.
func creator(ctx context.Context, c *apiClient, st *crashState) {
	for ctx.Err() == nil {
		n := creatorSeq.Add(1)
		spec := deploymentSpec{Name: fmt.Sprintf("crash-new-%d", n), Metadata: map[string]string{"bench": "crash-new"}}
		if n%2 == 0 {
			spec.RepoToken = fmt.Sprintf("ghp_crash_new_%d", n)
		}
		st.want(spec)
		st.inFlight.Add(1)
		d, err := c.createDeployment(ctx, spec.body())
		st.inFlight.Add(-1)
		if err != nil {
			return
		}
		st.ack(d.ID, d.Name)
		st.creates.Add(1)
	}
}

// runCrash is `go run ./bench crash`.
func runCrash(ctx context.Context, h *harness, o options) *section {
	sec := &section{name: "crash", title: "Crash test: kill -9 at random moments"}
	seed := o.seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	h.logf("crash seed %d (rerun with -seed %d)", seed, seed)
	const latency = 150 * time.Millisecond
	fake, err := startFake(latency)
	if err != nil {
		return sec.abort(err)
	}
	defer fake.Close()
	cp := crashParams{
		Kills: o.kills, EveryMinute: 400, ManualOnly: 100, ManualClients: 8, Creators: 2,
		MaxAlive: 6 * time.Second, AimBoundaries: true, MinAimed: 3, StartupKills: true, Seed: seed,
		Env: map[string]string{"SANDBOX0D_UPSTREAM_REQUEST_TIMEOUT": "10s"},
	}
	rep, err := crashTest(ctx, crashEnv{spawn: h.spawn, fake: fake, dir: h.dir("crash"), logf: h.logf}, cp)
	if err != nil {
		return sec.abort(err)
	}
	sec.note("Setup: one data directory reused across every restart; fake upstream with %s latency per request, so "+
		"session creations are in flight when the kill lands. Seeded through the API: %d deployments with `* * * * *` "+
		"(every minute) and %d manual-only, half of all with a GitHub repository token. While each daemon lives, %d "+
		"clients post manual runs on random deployments and %d clients create deployments. Seed %d (`-seed` repeats the "+
		"kill moments).", latency, cp.EveryMinute, cp.ManualOnly, cp.ManualClients, cp.Creators, seed)
	sec.note("Method: each cycle starts the binary, waits for READY, takes `GET /admin/backup` at once, checks it, lets "+
		"the daemon run for a random 0.1–%s (aimed 0–3 s past a minute boundary, i.e. into the scheduled burst, when "+
		"one is near; at least %d kills are aimed so) and sends SIGKILL; about one cycle in five also kills the next daemon before READY (during intent "+
		"recovery and schedule loading). After each kill the data file itself is opened read-only and checked. At the "+
		"end the last daemon stops with SIGTERM and everything is checked against the fake upstream's record of "+
		"sessions.", cp.MaxAlive, cp.MinAimed)
	sec.check(pass("random moments", fmt.Sprintf("seed %d", seed)))
	t := table{headers: []string{"kills", "of them before READY", "aimed past a minute boundary", "minute boundaries crossed", "scheduled fires checked for loss",
		"manual runs answered", "creates answered", "scheduled runs", "manual runs", "intents resolved at startup",
		"sessions upstream", "of them orphaned by a kill", "median start-to-READY", "wall time"}}
	t.add(fmt.Sprint(rep.kills), fmt.Sprint(rep.startupKills), fmt.Sprint(rep.boundaryKills), fmt.Sprint(rep.minutesCrossed), fmt.Sprint(rep.firesChecked),
		fmt.Sprint(rep.manualAcked), fmt.Sprint(rep.createsAcked), fmt.Sprint(rep.runs["schedule"]), fmt.Sprint(rep.runs["manual"]),
		fmt.Sprint(rep.recovered), fmt.Sprint(rep.sessions), fmt.Sprint(rep.orphanSessions), fmtDur(medianDuration(rep.readyIn)),
		rep.took.Round(time.Second).String())
	sec.tables = append(sec.tables, t)
	sec.note("An orphaned session is one the upstream created while the daemon died before recording it: by design the " +
		"run is recorded at the next start as `unknown_error` (\"the daemon stopped during session creation …\") and " +
		"the session is never created a second time.")
	sec.check(checkIf(rep.kills >= 20 || o.kills < 20, "at least 20 kills", fmt.Sprintf("%d kills", rep.kills)))
	sec.checks = append(sec.checks, rep.checks...)
	sec.check(fakeCleanCheck(fake))
	return sec
}
