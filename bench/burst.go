package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"strconv"
	"time"
)

// burstResult is one fire-burst run.
type burstResult struct {
	seedTook  time.Duration
	allIn     time.Duration // scheduled minute → every run recorded
	firstIn   time.Duration // scheduled minute → first run recorded
	lagP50    time.Duration // run.created_at − scheduled_at
	lagP99    time.Duration
	lagMax    time.Duration
	fireLag50 float64 // sandbox0d_fire_lag_seconds estimates (scheduled_at → session created)
	fireLag99 float64
	rss       int64
	// CPU time the daemon and the harness (load generator + fake upstream)
	// spent from the minute until every run was recorded.
	daemonCPU, harnessCPU time.Duration
	checks                []check
}

// errSeedOverran means seeding did not finish before the scheduled minute;
// the run is repeated with more headroom.
var errSeedOverran = errors.New("seeding finished too close to the scheduled minute")

// burstBuild is one binary a burst run uses: the working tree or an A/B
// baseline revision.
type burstBuild struct {
	name    string // "working tree" or "baseline 7c54e77"
	l       launcher
	results []burstResult
}

// runBurst measures opts.burstN deployments due in the same minute. With
// -baseline-rev it builds that revision too and alternates the two builds
// run by run (baseline, working, working, baseline, …) in one sitting, so
// both see the same machine load, and reports both with their ratio.
func runBurst(ctx context.Context, h *harness, o options) *section {
	sec := &section{name: "burst", title: fmt.Sprintf("Fire burst: %d deployments due in the same minute", o.burstN)}
	builds := []*burstBuild{{name: "working tree", l: h.daemon}}
	if o.baseline != "" {
		l, id, err := h.buildRevision(ctx, o.baseline)
		if err != nil {
			return sec.abort(err)
		}
		builds = append(builds, &burstBuild{name: "baseline " + id, l: l})
	}
	headroom := 1.5
	for r := 0; r < o.runs; r++ {
		for k := range builds {
			// ABBA order: neither build always goes first.
			b := builds[(k+r)%len(builds)]
			h.logf("burst run %d/%d (%s)", r+1, o.runs, b.name)
			for {
				res, err := burstOnce(ctx, h, o, b.l, headroom, r == o.runs-1 && b == builds[0])
				if errors.Is(err, errSeedOverran) && headroom < 4 {
					h.logf("  %v; repeating with more headroom", err)
					headroom *= 2
					continue
				}
				if err != nil {
					return sec.abort(fmt.Errorf("%s: %w", b.name, err))
				}
				b.results = append(b.results, res)
				for _, c := range res.checks {
					c.name = fmt.Sprintf("%s run %d: %s", b.name, len(b.results), c.name)
					sec.check(c)
				}
				break
			}
		}
	}
	sec.note("Setup per run: a fresh daemon with the default `schedule.workers` and `upstream.max_concurrency`, "+
		"fake upstream latency 0. %d deployments are created through the API with the cron expression `M H * * *` of one "+
		"whole UTC minute chosen so that seeding ends before it (plus 200 manual-only deployments created first to "+
		"measure the create rate). The harness then waits for that minute and polls `/metrics` "+
		"(`sandbox0d_runs_total{trigger=\"schedule\"}`) every 100 ms until every run is recorded, and reads the runs back "+
		"with `GET /v1/deployment_runs?trigger_type=schedule` (pages of 1000).", o.burstN)
	sec.note("\"Run-start lag\" is `run.created_at − scheduled_at` (when the fire's run was recorded); \"fire lag\" is " +
		"the daemon's `sandbox0d_fire_lag_seconds` histogram (scheduled_at → session created and recorded), estimated by " +
		"interpolation inside its buckets.")
	if len(builds) > 1 {
		sec.note("A/B: the working tree and %s were built from this repository and run alternately (ABBA order) in "+
			"one sitting on the same machine, %d runs each, so the ratio compares them under the same load.", builds[1].name, o.runs)
	}
	for _, b := range builds {
		sec.tables = append(sec.tables, burstTable(b))
	}
	if len(builds) > 1 {
		w, base := median(allIn(builds[0].results)), median(allIn(builds[1].results))
		t := table{title: "A/B ratio (median time from the minute until every run is recorded)",
			headers: []string{"working tree", builds[1].name, "working ÷ baseline"}}
		t.add(fmtDurF(w), fmtDurF(base), fmt.Sprintf("**%.2f**", w/base))
		sec.tables = append(sec.tables, t)
	}
	return sec
}

func allIn(rs []burstResult) []float64 {
	var xs []float64
	for _, r := range rs {
		xs = append(xs, float64(r.allIn))
	}
	return xs
}

func burstTable(b *burstBuild) table {
	t := table{title: b.name, headers: []string{"run", "seed time", "first run recorded", "all runs recorded", "run-start lag p50", "p99", "max", "fire lag p50 (hist.)", "p99 (hist.)", "RSS after", "daemon CPU", "harness CPU"}}
	var dcpu, hcpu []float64
	var first, p50, p99, mx, f50, f99, rss []float64
	for i, r := range b.results {
		t.add(strconv.Itoa(i+1), fmtDur(r.seedTook), fmtDur(r.firstIn), fmtDur(r.allIn), fmtDur(r.lagP50), fmtDur(r.lagP99),
			fmtDur(r.lagMax), fmtSeconds(r.fireLag50), fmtSeconds(r.fireLag99), fmt.Sprintf("%.0f MiB", mib(r.rss)),
			fmtDur(r.daemonCPU), fmtDur(r.harnessCPU))
		dcpu = append(dcpu, float64(r.daemonCPU))
		hcpu = append(hcpu, float64(r.harnessCPU))
		first = append(first, float64(r.firstIn))
		p50 = append(p50, float64(r.lagP50))
		p99 = append(p99, float64(r.lagP99))
		mx = append(mx, float64(r.lagMax))
		f50 = append(f50, r.fireLag50)
		f99 = append(f99, r.fireLag99)
		rss = append(rss, mib(r.rss))
	}
	t.add("**median**", "", fmtDurF(median(first)), "**"+fmtDurF(median(allIn(b.results)))+"**", "**"+fmtDurF(median(p50))+"**",
		"**"+fmtDurF(median(p99))+"**", fmtDurF(median(mx)), fmtSeconds(median(f50)), fmtSeconds(median(f99)),
		fmt.Sprintf("%.0f MiB", median(rss)), fmtDurF(median(dcpu)), fmtDurF(median(hcpu)))
	return t
}

func fmtSeconds(s float64) string {
	if math.IsNaN(s) {
		return "n/a"
	}
	return fmtDur(time.Duration(s * float64(time.Second)))
}

func burstOnce(ctx context.Context, h *harness, o options, l launcher, headroom float64, profile bool) (burstResult, error) {
	var res burstResult
	fake, err := startFake(0)
	if err != nil {
		return res, err
	}
	defer fake.Close()
	var env map[string]string
	if profile {
		env = pprofEnv(o, nil)
	}
	p, err := h.startWith(ctx, l, daemonConfig{DataDir: h.dir("burst"), UpstreamURL: fake.URL, UpstreamKey: fake.APIKey(), Env: env})
	if err != nil {
		return res, err
	}
	defer p.kill()
	c := p.api

	const pilotN, conc = 200, 32
	pilot, err := seed(ctx, h, c, pilotN, conc, func(i int) deploymentSpec {
		return deploymentSpec{Name: fmt.Sprintf("pilot-%d", i), Metadata: map[string]string{"bench": "burst-pilot"}}
	})
	if err != nil {
		return res, err
	}
	rate := float64(pilotN) / pilot.took.Seconds()
	estimate := time.Duration(float64(o.burstN)/rate*headroom*float64(time.Second)) + 15*time.Second
	at := time.Now().UTC().Add(estimate).Truncate(time.Minute).Add(time.Minute)
	expr := fmt.Sprintf("%d %d * * *", at.Minute(), at.Hour())
	h.logf("  pilot %.0f creates/s; %d deployments with %q (due %s)", rate, o.burstN, expr, at.Format("15:04:05"))
	seeded, err := seed(ctx, h, c, o.burstN, conc, func(i int) deploymentSpec {
		return deploymentSpec{Name: fmt.Sprintf("burst-%d", i), Expression: expr, Metadata: map[string]string{"bench": "burst"}}
	})
	if err != nil {
		return res, err
	}
	res.seedTook = seeded.took
	if time.Until(at) < time.Second {
		return res, fmt.Errorf("%w (%s left)", errSeedOverran, time.Until(at).Round(time.Millisecond))
	}
	h.logf("  seeded in %s; waiting %s for the minute", seeded.took.Round(time.Second), time.Until(at).Round(time.Second))
	select {
	case <-time.After(time.Until(at)):
	case <-ctx.Done():
		return res, ctx.Err()
	}

	daemonCPU0, _ := cpuTime(p.pid())
	harnessCPU0 := selfCPU()
	var prof, allocs *profileCapture
	stopHarness := func() {}
	if profile && o.profile != "" {
		prof = p.startProfile(ctx, 15*time.Second, filepath.Join(o.profile, "burst.pprof"))
		allocs = p.startProfileOf(ctx, "allocs", 15*time.Second, filepath.Join(o.profile, "burst-allocs.pprof"))
		// The harness (the fake upstream answering every fire) shares the
		// machine: its profile says how much of the burst is the fake's.
		stopHarness = startSelfProfile(filepath.Join(o.profile, "burst-harness.pprof"))
	}
	deadline := at.Add(10 * time.Minute)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ms, err := c.metrics(ctx)
		if err != nil {
			return res, err
		}
		n := int(ms.sum("sandbox0d_runs_total", map[string]string{"trigger": "schedule"}))
		if n > 0 && res.firstIn == 0 {
			res.firstIn = time.Since(at)
		}
		if n >= o.burstN {
			res.allIn = time.Since(at)
			res.fireLag50 = ms.histogramQuantile("sandbox0d_fire_lag_seconds", 0.5)
			res.fireLag99 = ms.histogramQuantile("sandbox0d_fire_lag_seconds", 0.99)
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("only %d of %d runs recorded 10 minutes after the scheduled minute", n, o.burstN)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	stopHarness()
	res.rss, _ = rssBytes(p.pid())
	daemonCPU1, _ := cpuTime(p.pid())
	res.daemonCPU, res.harnessCPU = daemonCPU1-daemonCPU0, selfCPU()-harnessCPU0
	for _, pc := range []*profileCapture{prof, allocs} {
		if pc == nil {
			continue
		}
		if err := pc.wait(); err != nil {
			h.logf("  profile: %v", err)
		} else {
			h.logf("  profile written to %s", pc.path)
		}
	}
	h.logf("  all %d runs recorded %s after the minute (CPU: daemon %s, harness %s)", o.burstN, res.allIn.Round(time.Millisecond),
		res.daemonCPU.Round(time.Millisecond), res.harnessCPU.Round(time.Millisecond))

	runs, err := c.allRuns(ctx, url.Values{"trigger_type": {"schedule"}})
	if err != nil {
		return res, err
	}
	lags := make([]time.Duration, 0, len(runs))
	perDeployment := map[string]int{}
	wrongMinute, failed, noSession := 0, 0, 0
	for _, r := range runs {
		perDeployment[r.DeploymentID]++
		if !r.scheduledAt().Equal(at) {
			wrongMinute++
		}
		if r.Error != nil {
			failed++
		}
		if r.SessionID == nil {
			noSession++
		}
		lags = append(lags, r.createdAt().Sub(r.scheduledAt()))
	}
	res.lagP50, res.lagP99, res.lagMax = percentile(lags, 50), percentile(lags, 99), percentile(lags, 100)
	dupFires := 0
	for _, n := range perDeployment {
		if n > 1 {
			dupFires++
		}
	}
	res.checks = append(res.checks,
		checkIf(len(runs) == o.burstN && len(perDeployment) == o.burstN && wrongMinute == 0,
			"one scheduled run per deployment, at the scheduled minute",
			fmt.Sprintf("%d runs for %d deployments, %d at another scheduled_at", len(runs), len(perDeployment), wrongMinute)),
		checkIf(dupFires == 0, "at most one run per (deployment, scheduled_at)", fmt.Sprintf("%d deployments with more than one run", dupFires)),
		checkIf(failed == 0 && noSession == 0, "every fire created its session", fmt.Sprintf("%d runs with an error, %d without a session", failed, noSession)),
	)
	dups, example := duplicateSessions(fake)
	res.checks = append(res.checks,
		checkIf(fake.SessionsCreated() == o.burstN && dups == 0, "no session created twice upstream",
			fmt.Sprintf("%d sessions created for %d runs; %d runs with several sessions %s", fake.SessionsCreated(), o.burstN, dups, example)),
		fakeCleanCheck(fake))
	if err := p.stop(30 * time.Second); err != nil {
		res.checks = append(res.checks, fail("graceful shutdown", err.Error()))
	}
	return res, nil
}
