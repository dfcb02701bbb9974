package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandbox0/sandbox0d/internal/fakeupstream"
)

// Fault test settings: a short retry window so exhausted retries show up
// within a phase, and a request timeout that turns a hang into a timeout.
const (
	faultRetryWindow    = 10 * time.Second
	faultRequestTimeout = 3 * time.Second
	// faultLead is how long before its first minute boundary a phase starts.
	faultLead = 15 * time.Second
	// apiP99Bound is the p99 the API must stay under in every phase.
	apiP99Bound = time.Second
)

// faultPhase is one state of the upstream.
type faultPhase struct {
	name  string
	slots int // minute boundaries inside the phase
	// apply puts the upstream in this state; undo takes it out.
	apply, undo func(f *fakeupstream.Server) error
	// wantRun is the error type a run started and finished inside the
	// phase must have ("" for success).
	wantRun string
	// wantPaused says scheduled deployments are paused after the phase's
	// first fire (by an auto-pause error); false means they keep firing.
	wantPaused bool
}

// phaseStats is what was observed during one phase.
type phaseStats struct {
	lat              []time.Duration
	apiErrs          int
	firstAPIErr      error
	runs             map[string]int // manual runs started and finished in the phase, by error type ("" ok)
	runDur           []time.Duration
	scheduled        map[string]int // scheduled runs of the phase's boundaries by error type
	statuses         map[string]int // scheduled deployments' status at the end, "paused:<type>" or "active"
	maxRSS           int64
	maxGoroutines    float64
	endRSS           int64
	endGoroutines    float64
	createStatus     int // POST /v1/deployments during the phase (down only)
	createTook       time.Duration
	proxyStatus      int // GET /v1/sessions/{id} proxied during the phase (down only)
	proxyTook        time.Duration
	startedAt, ended time.Time
}

// runFaults is `go run ./bench faults`.
func runFaults(ctx context.Context, h *harness, o options) *section {
	sec := &section{name: "faults", title: "Fault test: the upstream goes down, answers 500 and 429, hangs"}
	fake, err := startFake(0)
	if err != nil {
		return sec.abort(err)
	}
	defer fake.Close()
	upstreamAddr := fake.Addr()
	cfg := daemonConfig{DataDir: h.dir("faults"), UpstreamURL: fake.URL, UpstreamKey: fake.APIKey(), Env: map[string]string{
		"SANDBOX0D_UPSTREAM_RETRY_WINDOW":    faultRetryWindow.String(),
		"SANDBOX0D_UPSTREAM_REQUEST_TIMEOUT": faultRequestTimeout.String(),
		"SANDBOX0D_UPSTREAM_MAX_CONCURRENCY": "16",
		"SANDBOX0D_SCHEDULE_WORKERS":         "16",
	}}
	p, err := h.start(ctx, cfg)
	if err != nil {
		return sec.abort(err)
	}
	defer p.kill()
	c := p.api

	const scheduledN, manualN, fillerN = 20, 20, 1000
	seeded, err := seed(ctx, h, c, scheduledN+manualN+fillerN, 16, func(i int) deploymentSpec {
		s := deploymentSpec{Name: fmt.Sprintf("faults-%d", i), Metadata: map[string]string{"bench": "faults"}}
		switch {
		case i < scheduledN:
			s.Expression = "* * * * *"
		case i < scheduledN+manualN:
		default:
			s.Expression = farSchedule(i)
		}
		return s
	})
	if err != nil {
		return sec.abort(err)
	}
	scheduledIDs := seeded.ids[:scheduledN]
	manualIDs := seeded.ids[scheduledN : scheduledN+manualN]
	allIDs := seeded.ids

	down := max(o.downSlots, 2)
	phases := []faultPhase{
		{name: "baseline (healthy)", slots: 1},
		{name: "429 on every session creation", slots: 1, wantRun: "session_rate_limited_error",
			apply: injectAll(fakeupstream.Fault{Status: http.StatusTooManyRequests, Message: "rate limited by the fault test"})},
		{name: "500 on every session creation", slots: 1, wantRun: "unknown_error", wantPaused: true,
			apply: injectAll(fakeupstream.Fault{Status: http.StatusInternalServerError, Message: "internal error from the fault test"})},
		{name: fmt.Sprintf("hang (no answer; request timeout %s)", faultRequestTimeout), slots: 1, wantRun: "unknown_error", wantPaused: true,
			apply: injectAll(fakeupstream.Fault{Hang: true})},
		{name: fmt.Sprintf("down for %d minutes (listener closed)", down), slots: down, wantRun: "unknown_error", wantPaused: true,
			apply: func(f *fakeupstream.Server) error { f.Stop(); return nil },
			undo:  func(f *fakeupstream.Server) error { return f.Start(upstreamAddr) }},
		{name: "recovered (healthy, after unpausing)", slots: 1},
	}
	for i := range phases {
		if phases[i].apply != nil && phases[i].undo == nil {
			phases[i].undo = func(f *fakeupstream.Server) error { f.ClearFaults(); f.Release(); return nil }
		}
	}

	// Align: the first phase starts faultLead before a minute boundary.
	now := time.Now()
	b := now.Truncate(time.Minute).Add(time.Minute)
	if b.Sub(now) < faultLead+2*time.Second {
		b = b.Add(time.Minute)
	}
	t0 := b.Add(-faultLead)
	total := 0
	for _, ph := range phases {
		total += ph.slots
	}
	h.logf("faults: %d phases, %d minutes, starting %s", len(phases), total, t0.Format("15:04:05"))
	if !sleepUntil(ctx, t0) {
		return sec.abort(ctx.Err())
	}

	stats := make([]*phaseStats, len(phases))
	for i := range stats {
		stats[i] = &phaseStats{runs: map[string]int{}, scheduled: map[string]int{}, statuses: map[string]int{}}
	}
	var current atomic.Int32
	bg, stopBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	// API prober: 4 clients, retrieve and list alternately, 20 ms apart.
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for n := 0; bg.Err() == nil; n++ {
				ph := stats[current.Load()]
				path := "/v1/deployments/" + allIDs[rng.IntN(len(allIDs))]
				if n%2 == 1 {
					path = "/v1/deployments?limit=100"
				}
				t := time.Now()
				_, err := c.do(bg, http.MethodGet, path, nil)
				d := time.Since(t)
				if bg.Err() != nil {
					return
				}
				mu.Lock()
				ph.lat = append(ph.lat, d)
				if err != nil {
					ph.apiErrs++
					if ph.firstAPIErr == nil {
						ph.firstAPIErr = err
					}
				}
				mu.Unlock()
				sleepCtx(bg, 20*time.Millisecond)
			}
		})
	}
	// Manual runner: 2 clients, one run per second each.
	for w := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			for bg.Err() == nil {
				startPhase := current.Load()
				t := time.Now()
				r, err := c.runDeployment(bg, manualIDs[rng.IntN(len(manualIDs))])
				d := time.Since(t)
				if bg.Err() != nil {
					return
				}
				mu.Lock()
				if err == nil && current.Load() == startPhase {
					ph := stats[startPhase]
					ph.runs[r.errorType()]++
					ph.runDur = append(ph.runDur, d)
				} else if err != nil {
					ph := stats[startPhase]
					ph.runs["request failed: "+shortErr(err)]++
				}
				mu.Unlock()
				sleepCtx(bg, time.Second)
			}
		})
	}
	// Resource sampler: every 2 s.
	wg.Go(func() {
		for bg.Err() == nil {
			ph := stats[current.Load()]
			rss, _ := rssBytes(p.pid())
			ms, err := c.metrics(bg)
			mu.Lock()
			ph.maxRSS = max(ph.maxRSS, rss)
			ph.endRSS = rss
			if err == nil {
				g := ms.sum("go_goroutines", nil)
				ph.maxGoroutines = max(ph.maxGoroutines, g)
				ph.endGoroutines = g
			}
			mu.Unlock()
			sleepCtx(bg, 2*time.Second)
		}
	})

	phaseStart := t0
	for i, ph := range phases {
		st := stats[i]
		st.startedAt = phaseStart
		h.logf("  phase %d: %s", i+1, ph.name)
		if ph.apply != nil {
			if err := ph.apply(fake); err != nil {
				stopBG()
				wg.Wait()
				return sec.abort(err)
			}
		}
		current.Store(int32(i))
		// Resume the schedules a previous phase paused.
		for _, id := range scheduledIDs {
			_ = c.unpause(ctx, id) // 409-free: unpausing an active deployment is a no-op
		}
		if strings.HasPrefix(ph.name, "down") {
			// Creating needs the upstream (agent and environment lookups): a
			// fast 503 while it is down, not a hang.
			t := time.Now()
			_, err := c.createDeployment(ctx, deploymentSpec{Name: "faults-while-down", Metadata: map[string]string{}}.body())
			st.createTook = time.Since(t)
			var se *apiStatusError
			if errors.As(err, &se) {
				st.createStatus = se.Status
			} else if err == nil {
				st.createStatus = 200
			}
			t = time.Now()
			_, err = c.do(ctx, http.MethodGet, "/v1/sessions/sesn_fault_probe", nil)
			st.proxyTook = time.Since(t)
			if errors.As(err, &se) {
				st.proxyStatus = se.Status
			}
		}
		phaseEnd := phaseStart.Add(time.Duration(ph.slots) * time.Minute)
		if !sleepUntil(ctx, phaseEnd) {
			stopBG()
			wg.Wait()
			return sec.abort(ctx.Err())
		}
		st.ended = time.Now()
		// The phase's scheduled runs and what they did to their deployments.
		runs, err := c.allRuns(ctx, url.Values{"trigger_type": {"schedule"},
			"created_at[gte]": {phaseStart.UTC().Format(time.RFC3339Nano)}, "created_at[lt]": {phaseEnd.UTC().Format(time.RFC3339Nano)}})
		if err != nil {
			stopBG()
			wg.Wait()
			return sec.abort(err)
		}
		for _, r := range runs {
			st.scheduled[r.errorType()]++
		}
		for _, id := range scheduledIDs {
			d, err := c.getDeployment(ctx, id)
			if err != nil {
				st.statuses["error: "+shortErr(err)]++
				continue
			}
			key := d.Status
			if d.PausedReason != nil && d.PausedReason.Error != nil {
				key += ":" + d.PausedReason.Error.Type
			}
			st.statuses[key]++
		}
		if ph.undo != nil {
			if err := ph.undo(fake); err != nil {
				stopBG()
				wg.Wait()
				return sec.abort(err)
			}
		}
		phaseStart = phaseEnd
	}
	stopBG()
	wg.Wait()

	// A manual run after everything: the upstream is back.
	final, err := c.runDeployment(ctx, manualIDs[0])
	finalOK := err == nil && final.Error == nil && final.SessionID != nil

	return faultReport(sec, phases, stats, scheduledN, finalOK, final, err, fake)
}

func injectAll(f fakeupstream.Fault) func(*fakeupstream.Server) error {
	return func(s *fakeupstream.Server) error {
		s.InjectFault(fakeupstream.RouteCreateSession, -1, f)
		return nil
	}
}

func faultReport(sec *section, phases []faultPhase, stats []*phaseStats, scheduledN int, finalOK bool, final wireRun, finalErr error, fake *fakeupstream.Server) *section {
	sec.note("Setup: one daemon with `upstream.retry_window` %s, `upstream.request_timeout` %s, `upstream.max_concurrency` 16, "+
		"`schedule.workers` 16; %d deployments firing every minute (`* * * * *`), 20 manual-only ones that receive manual "+
		"runs, and 1000 with far schedules. Each phase starts %s before a minute boundary and lasts whole minutes, so its "+
		"scheduled fires happen under its fault; at the start of each phase the previous phase's fault is undone and every "+
		"paused deployment is unpaused.", faultRetryWindow, faultRequestTimeout, scheduledN, faultLead)
	sec.note("During all phases: 4 API clients alternate `GET /v1/deployments/{id}` and `GET /v1/deployments?limit=100` "+
		"20 ms apart (latency and errors per phase; the bound is p99 < %s and no errors), 2 clients post a manual run on a "+
		"manual-only deployment every second (a run that starts and ends within one phase is classified), and RSS "+
		"(`/proc/<pid>/status`) and `go_goroutines` (`/metrics`) are sampled every 2 s. Faults are injected on "+
		"`POST /v1/sessions` of the fake; \"down\" closes its listener and every connection and reopens it on the same port.", apiP99Bound)
	t := table{headers: []string{"phase", "API p50", "API p99", "API errors", "manual runs (by error type)", "manual run p50 time",
		"scheduled runs (by error type)", "scheduled deployments after", "max RSS", "max goroutines", "end goroutines"}}
	for i, ph := range phases {
		st := stats[i]
		t.add(ph.name, fmtDur(percentile(st.lat, 50)), fmtDur(percentile(st.lat, 99)), fmt.Sprint(st.apiErrs), countsString(st.runs),
			fmtDur(percentile(st.runDur, 50)), countsString(st.scheduled), countsString(st.statuses),
			fmt.Sprintf("%.0f MiB", mib(st.maxRSS)), fmt.Sprintf("%.0f", st.maxGoroutines), fmt.Sprintf("%.0f", st.endGoroutines))
	}
	sec.tables = append(sec.tables, t)

	base := stats[0]
	for i, ph := range phases {
		st := stats[i]
		p99 := percentile(st.lat, 99)
		detail := fmt.Sprintf("p99 %s over %d requests, %d errors", fmtDur(p99), len(st.lat), st.apiErrs)
		if st.firstAPIErr != nil {
			detail += "; first: " + shortErr(st.firstAPIErr)
		}
		sec.check(checkIf(st.apiErrs == 0 && p99 < apiP99Bound && len(st.lat) > 0, ph.name+": the API keeps answering", detail))

		want := ph.wantRun
		wantKey := want
		if want == "" {
			wantKey = "ok"
		}
		classified := len(st.runs) > 0
		for k := range st.runs {
			if k != want {
				classified = false
			}
		}
		sec.check(checkIf(classified, fmt.Sprintf("%s: manual runs are %s", ph.name, wantKey), countsString(st.runs)))

		// Scheduled: the phase's first boundary fires every deployment;
		// later boundaries fire only if the first did not pause them.
		wantSched := scheduledN
		if !ph.wantPaused {
			wantSched = scheduledN * ph.slots
		}
		schedOK := len(st.scheduled) == 1 && st.scheduled[want] == wantSched
		sec.check(checkIf(schedOK, fmt.Sprintf("%s: scheduled runs are %d × %s", ph.name, wantSched, wantKey), countsString(st.scheduled)))
		wantStatus := "active"
		if ph.wantPaused {
			wantStatus = "paused:" + want
		}
		sec.check(checkIf(st.statuses[wantStatus] == scheduledN, fmt.Sprintf("%s: scheduled deployments end %s", ph.name, wantStatus), countsString(st.statuses)))
		if strings.HasPrefix(ph.name, "down") {
			sec.check(checkIf(st.createStatus == http.StatusServiceUnavailable && st.createTook < 2*faultRequestTimeout,
				"down: creating a deployment is a prompt 503", fmt.Sprintf("%d in %s", st.createStatus, fmtDur(st.createTook))))
			sec.check(checkIf(st.proxyStatus/100 == 5 && st.proxyTook < 2*faultRequestTimeout,
				"down: a proxied sessions request is a prompt 5xx", fmt.Sprintf("%d in %s", st.proxyStatus, fmtDur(st.proxyTook))))
		}
	}
	maxG, maxR := base.maxGoroutines, base.maxRSS
	for _, st := range stats {
		maxG, maxR = max(maxG, st.maxGoroutines), max(maxR, st.maxRSS)
	}
	last := stats[len(stats)-1]
	sec.check(checkIf(maxG <= 2*base.maxGoroutines+100, "goroutines stay bounded during faults (≤ 2 × baseline + 100)",
		fmt.Sprintf("baseline max %.0f, max in any phase %.0f", base.maxGoroutines, maxG)))
	sec.check(checkIf(last.endGoroutines <= base.maxGoroutines+20, "goroutines return to baseline after recovery (≤ baseline + 20)",
		fmt.Sprintf("baseline max %.0f, end %.0f", base.maxGoroutines, last.endGoroutines)))
	sec.check(checkIf(maxR <= base.maxRSS+64<<20, "memory stays flat during faults (max RSS ≤ baseline + 64 MiB)",
		fmt.Sprintf("baseline max %.0f MiB, max in any phase %.0f MiB, end %.0f MiB", mib(base.maxRSS), mib(maxR), mib(last.endRSS))))
	detail := "session " + derefOr(final.SessionID, "none")
	if finalErr != nil {
		detail = finalErr.Error()
	} else if final.Error != nil {
		detail = final.Error.Type + ": " + final.Error.Message
	}
	sec.check(checkIf(finalOK, "a manual run after recovery creates its session", detail))
	dups, example := duplicateSessions(fake)
	sec.check(checkIf(dups == 0, "no session created twice upstream", fmt.Sprintf("%d runs with several sessions %s", dups, example)))
	sec.check(fakeCleanCheck(fake))
	return sec
}

func derefOr(s *string, def string) string {
	if s == nil {
		return def
	}
	return *s
}

// countsString renders a count map as "a 3, b 1" (sorted; "ok" for "").
func countsString(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		name := k
		if name == "" {
			name = "ok"
		}
		parts = append(parts, fmt.Sprintf("%s %d", name, m[k]))
	}
	return strings.Join(parts, ", ")
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

// sleepUntil waits for t or ctx; false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	return sleepCtx(ctx, time.Until(t))
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}
