package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"
)

// scaleSpec spreads deployments over daily, weekday and twice-monthly
// schedules at hours at least three hours from now (so nothing fires while
// the daemon is measured idle), with one in ten manual-only.
func scaleSpec(now time.Time) func(i int) deploymentSpec {
	return func(i int) deploymentSpec {
		s := deploymentSpec{Name: fmt.Sprintf("scale-%d", i), Metadata: map[string]string{"bench": "scale", "i": strconv.Itoa(i)}}
		if i%10 == 9 {
			return s
		}
		hour := (now.UTC().Hour() + 3 + i%18) % 24
		minute := (i / 18) % 60
		switch i % 3 {
		case 0:
			s.Expression = fmt.Sprintf("%d %d * * 1-5", minute, hour)
		case 1:
			s.Expression = fmt.Sprintf("%d %d * * *", minute, hour)
		default:
			s.Expression = fmt.Sprintf("%d %d 1,15 * *", minute, hour)
		}
		return s
	}
}

// retentionWatchFrom is when, after READY, the harness starts watching for
// the first retention pass (due one minute after the daemon starts serving).
const retentionWatchFrom = 50 * time.Second

// runScale stores opts.scaleN deployments, then restarts the daemon on them
// opts.runs times and measures start-to-READY, RSS and idle CPU.
func runScale(ctx context.Context, h *harness, o options) *section {
	if o.sizes != "" {
		sizes, err := parseSizes(o.sizes)
		if err != nil {
			return (&section{name: "scale", title: "Scaling curve"}).abort(err)
		}
		return runScaleCurve(ctx, h, o, sizes)
	}
	sec := &section{name: "scale", title: fmt.Sprintf("Scale: %d deployments", o.scaleN)}
	fake, err := startFake(0)
	if err != nil {
		return sec.abort(err)
	}
	defer fake.Close()
	cfg := daemonConfig{DataDir: h.dir("scale"), UpstreamURL: fake.URL, UpstreamKey: fake.APIKey()}
	p, err := h.start(ctx, cfg)
	if err != nil {
		return sec.abort(err)
	}
	const conc = 32
	h.logf("seeding %d deployments through the API (%d clients)", o.scaleN, conc)
	spec := scaleSpec(time.Now())
	seeded, err := seed(ctx, h, p.api, o.scaleN, conc, spec)
	if err != nil {
		p.kill()
		return sec.abort(err)
	}
	scheduled := 0
	for i := range o.scaleN {
		if spec(i).Expression != "" {
			scheduled++
		}
	}
	rssSeeded, _ := rssBytes(p.pid())
	if err := p.stop(time.Minute); err != nil {
		return sec.abort(fmt.Errorf("stop after seeding: %w", err))
	}
	h.logf("seeded in %s (%.0f creates/s)", seeded.took.Round(time.Second), float64(o.scaleN)/seeded.took.Seconds())
	var fileSize int64
	if fi, err := os.Stat(p.dbPath()); err == nil {
		fileSize = fi.Size()
	}

	type sample struct {
		ready             time.Duration
		rssReady, rssIdle int64
		cpuIdle           float64 // percent of one core
		goroutines, heap  float64
		deployments       float64
		pass              activity
		passSeen          bool
		stop              time.Duration
	}
	var samples []sample
	for r := range o.runs {
		if ctx.Err() != nil {
			return sec.abort(ctx.Err())
		}
		p, err := h.start(ctx, cfg)
		if err != nil {
			return sec.abort(err)
		}
		var s sample
		s.ready = p.readyIn
		s.rssReady, _ = rssBytes(p.pid())
		// The first run retention pass starts one minute after the daemon
		// begins serving (then every runs.retention.interval, an hour):
		// measure it on its own, then the idle daemon after it.
		if !sleepCtx(ctx, time.Until(p.startedAt.Add(p.readyIn).Add(retentionWatchFrom))) {
			p.kill()
			return sec.abort(ctx.Err())
		}
		s.pass, s.passSeen = awaitBurst(ctx, p.pid(), 40*time.Second, 2*time.Second, 10*time.Minute)
		cpu0, _ := cpuTime(p.pid())
		t0 := time.Now()
		if !sleepCtx(ctx, o.idle) {
			p.kill()
			return sec.abort(ctx.Err())
		}
		cpu1, _ := cpuTime(p.pid())
		s.cpuIdle = 100 * float64(cpu1-cpu0) / float64(time.Since(t0))
		s.rssIdle, _ = rssBytes(p.pid())
		ms, err := p.api.metrics(ctx)
		if err != nil {
			p.kill()
			return sec.abort(err)
		}
		s.goroutines = ms.sum("go_goroutines", nil)
		s.heap = ms.sum("sandbox0d_scheduler_heap_size", nil)
		s.deployments = ms.sum("sandbox0d_deployments", nil)
		t1 := time.Now()
		if err := p.stop(time.Minute); err != nil {
			sec.check(fail(fmt.Sprintf("run %d: graceful shutdown", r+1), err.Error()))
		}
		s.stop = time.Since(t1)
		h.logf("  run %d: ready in %s, RSS %.0f MiB → %.0f MiB after %s idle, idle CPU %.2f%%, %v goroutines; retention pass %s wall, %s CPU, %d writes",
			r+1, s.ready.Round(time.Millisecond), mib(s.rssReady), mib(s.rssIdle), o.idle, s.cpuIdle, s.goroutines,
			s.pass.wall.Round(time.Millisecond), s.pass.cpu, s.pass.writes)
		samples = append(samples, s)
	}

	sec.note("Setup: %d deployments created through the API by %d concurrent clients in %s (%.0f creates/s, one fsync each); "+
		"%d have a cron schedule (daily, weekdays or the 1st and 15th, at UTC hours at least three hours from now, so nothing "+
		"fires during the measurement) and sit in the timer heap, the rest are manual-only. Database file: %.0f MiB. "+
		"Daemon RSS at the end of seeding: %.0f MiB.",
		o.scaleN, conc, seeded.took.Round(time.Second), float64(o.scaleN)/seeded.took.Seconds(), scheduled, mib(fileSize), mib(rssSeeded))
	sec.note("Method: the daemon is stopped and started again on the same data directory %d times. Start-to-READY is "+
		"from exec to the first 200 from `/readyz` (polled every 5 ms; it includes opening bbolt, loading the age identity, "+
		"resolving intents, decoding every deployment and planning each schedule's next fire). RSS is VmRSS from "+
		"`/proc/<pid>/status`. The first run retention pass starts one minute after the daemon begins serving (then "+
		"every hour); it is the first burst of CPU time (`/proc/<pid>/stat`) or write system calls (`/proc/<pid>/io` "+
		"syscw) seen from %s after READY on, until 2 s without either (sampled every 50 ms, so short passes read as "+
		"about 25–50 ms). Idle CPU is utime+stime over the %s right after that pass, with no requests, as a "+
		"percentage of one core: what an idle daemon costs between passes.", o.runs, retentionWatchFrom, o.idle)
	t := table{headers: []string{"run", "start-to-READY", "RSS at READY", fmt.Sprintf("RSS after %s idle", o.idle),
		fmt.Sprintf("idle CPU (%s)", o.idle), "goroutines", "retention pass: wall", "CPU", "write syscalls", "SIGTERM to exit"}}
	var ready, rssR, rssI, cpu, passWall, passCPU, stop []float64
	for i, s := range samples {
		wall, pcpu, writes := "not seen", "", ""
		if s.passSeen {
			wall, pcpu, writes = fmtDur(s.pass.wall), fmtDur(s.pass.cpu), fmt.Sprint(s.pass.writes)
			passWall = append(passWall, float64(s.pass.wall))
			passCPU = append(passCPU, float64(s.pass.cpu))
		}
		t.add(strconv.Itoa(i+1), fmtDur(s.ready), fmt.Sprintf("%.0f MiB", mib(s.rssReady)), fmt.Sprintf("%.0f MiB", mib(s.rssIdle)),
			fmt.Sprintf("%.2f %%", s.cpuIdle), fmt.Sprintf("%.0f", s.goroutines), wall, pcpu, writes, fmtDur(s.stop))
		ready = append(ready, float64(s.ready))
		rssR = append(rssR, mib(s.rssReady))
		rssI = append(rssI, mib(s.rssIdle))
		cpu = append(cpu, s.cpuIdle)
		stop = append(stop, float64(s.stop))
	}
	t.add("**median**", "**"+fmtDurF(median(ready))+"**", fmt.Sprintf("**%.0f MiB**", median(rssR)), fmt.Sprintf("**%.0f MiB**", median(rssI)),
		fmt.Sprintf("**%.2f %%**", median(cpu)), "", fmtDurF(median(passWall)), fmtDurF(median(passCPU)), "", fmtDurF(median(stop)))
	sec.tables = append(sec.tables, t)

	for i, s := range samples {
		sec.check(checkIf(int(s.deployments) == o.scaleN && int(s.heap) == scheduled,
			fmt.Sprintf("run %d: every deployment loaded, every schedule planned", i+1),
			fmt.Sprintf("sandbox0d_deployments %.0f (want %d), sandbox0d_scheduler_heap_size %.0f (want %d)", s.deployments, o.scaleN, s.heap, scheduled)))
	}
	sec.note("Idle CPU resolution is one clock tick (10 ms) per window, i.e. 0.017 %% of a core over 60 s.")
	for i, s := range samples {
		if s.passSeen {
			sec.check(checkIf(s.pass.writes == 0, fmt.Sprintf("run %d: a retention pass with nothing to prune writes nothing", i+1),
				fmt.Sprintf("%d write system calls during the pass", s.pass.writes)))
		}
	}
	sec.check(checkIf(fake.SessionsCreated() == 0, "nothing fired while idle", fmt.Sprintf("%d sessions created upstream", fake.SessionsCreated())))
	sec.check(fakeCleanCheck(fake))
	return sec
}
