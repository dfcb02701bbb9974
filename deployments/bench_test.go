package deployments

import (
	"context"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandbox0/sandbox0d/schedule"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/store"
)

// Scheduler benchmarks. They only run with -bench; the 100,000-deployment
// and 10,000-deployment bbolt fixtures are built once per process (a few
// seconds) on first use. Run them with:
//
//	go test ./deployments -run '^$' -bench 'Scheduler' -benchtime 1x
//
// The side-by-side comparison with robfig/cron and gocron, and NextFire
// cost per call, live in the schedule package (compare_bench_test.go,
// next_bench_test.go).

// BenchmarkSchedulerLoad100k is the startup cost with 100,000 active
// scheduled deployments of varied expressions and zones in bbolt:
// NewScheduler + Load, which reads and decodes every document, compiles
// each schedule into the plan cache, checks for missed fires and places
// the next fire in the timer loop. The clock is 10 s after every PlanFrom,
// a restart with nothing missed. The file is only read, so the page cache
// is warm after the first iteration, as after a restart.
//
// Metrics:
//   - s/load: NewScheduler + Load wall time (target < 2 s);
//   - B/deployment: growth of HeapInuse (after GC) from before
//     NewScheduler to after Load, per deployment, with the plan cache and
//     the loop populated (target < 1 KiB); live-B/deployment is the same
//     with HeapAlloc, that is without span fragmentation;
//   - plan-cache-live-B/deployment and loop-live-B/deployment split the live
//     bytes: the plan cache is dropped and the heap measured again (the id
//     strings, shared by both, count for the loop);
//   - s/decode-only and s/parse-only time the two steps that dominate Load on
//     their own: decoding every stored document, and schedule.Parse of every
//     schedule.
func BenchmarkSchedulerLoad100k(b *testing.B) {
	st, err := store.Open(loadFixture(b), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	now := func() time.Time { return benchLoadPlanFrom.Add(10 * time.Second) }

	var loadTime time.Duration
	var inUseGrowth, liveGrowth, planCacheLive, loopLive float64
	b.ResetTimer()
	b.StopTimer()
	for range b.N {
		svc := NewService(Config{Store: st, Now: now, Logger: discardLogger()})
		inUseBefore, liveBefore := heapInUse()

		b.StartTimer()
		start := time.Now()
		sc := NewScheduler(svc, SchedulerConfig{})
		stats, err := sc.Load()
		loadTime += time.Since(start)
		b.StopTimer()

		if err != nil {
			b.Fatal(err)
		}
		if stats.Scheduled != benchLoadDeployments || stats.MisfiresRun+stats.MisfiresSkipped != 0 {
			b.Fatalf("Load found %+v, want %d scheduled and no misfire", stats, benchLoadDeployments)
		}
		if got := sc.Loop().Len(); got != benchLoadDeployments {
			b.Fatalf("loop holds %d fires, want %d", got, benchLoadDeployments)
		}
		inUseAfter, liveAfter := heapInUse()
		svc.plans = newPlanCache(schedule.DSTOnce)
		_, liveLoopOnly := heapInUse()
		runtime.KeepAlive(sc)

		inUseGrowth += float64(int64(inUseAfter) - int64(inUseBefore))
		liveGrowth += float64(int64(liveAfter) - int64(liveBefore))
		planCacheLive += float64(int64(liveAfter) - int64(liveLoopOnly))
		loopLive += float64(int64(liveLoopOnly) - int64(liveBefore))
	}
	decodeOnly, parseOnly := timeLoadSteps(b, st)

	perDeployment := float64(b.N) * benchLoadDeployments
	b.ReportMetric(loadTime.Seconds()/float64(b.N), "s/load")
	b.ReportMetric(inUseGrowth/perDeployment, "B/deployment")
	b.ReportMetric(liveGrowth/perDeployment, "live-B/deployment")
	b.ReportMetric(planCacheLive/perDeployment, "plan-cache-live-B/deployment")
	b.ReportMetric(loopLive/perDeployment, "loop-live-B/deployment")
	b.ReportMetric(decodeOnly.Seconds(), "s/decode-only")
	b.ReportMetric(parseOnly.Seconds(), "s/parse-only")
}

// timeLoadSteps times, once, what Load does besides the timer loop: a read
// transaction decoding every stored deployment, and parsing every schedule.
func timeLoadSteps(b *testing.B, st *store.Store) (decode, parse time.Duration) {
	b.Helper()
	schedules := make([]Schedule, 0, benchLoadDeployments)
	start := time.Now()
	err := st.View(func(tx *store.Tx) error {
		return tx.ForEachDeployment(func(_ string, doc []byte) error {
			d, err := decodePlanFields(doc) // what Load decodes
			if err != nil {
				return err
			}
			schedules = append(schedules, *d.Schedule)
			return nil
		})
	})
	decode = time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	start = time.Now()
	for _, s := range schedules {
		if _, err := schedule.Compile(s.Expression, s.Timezone); err != nil { // what Load compiles (Parse caches)
			b.Fatal(err)
		}
	}
	return decode, time.Since(start)
}

// BenchmarkSchedulerIdleHour100k shows the timer loop does not scan while
// idle: 100,000 deployments are loaded, none is due for an hour, and the
// running scheduler is watched for one hour of a clock warped 3600 times
// (one real second), with MaxSleep scaled by the same factor so it wakes
// exactly as often as with the default MaxSleep of one minute on a real
// clock. Each wake reads the clock once, peeks at the earliest entry and
// re-arms one timer.
//
// Metrics: wakes/idle-hour (clock readings by the loop during the hour);
// process CPU during that second, in total (cpu-ms/idle-hour: an upper
// bound of the scheduler's share, it includes the Go runtime's background
// work) and per wake (cpu-µs/wake). A scan of the 100,000 deployments per
// wake would cost milliseconds per wake instead.
func BenchmarkSchedulerIdleHour100k(b *testing.B) {
	st, err := store.Open(loadFixture(b), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	const warp = 3600

	var wakes int64
	var cpu time.Duration
	for range b.N {
		from := benchLoadPlanFrom.Add(-time.Hour)
		clock := newWarpClock(from, warp, from.Add(time.Hour))
		var fires atomic.Int64
		svc := NewService(Config{Store: st, Now: clock.now, Logger: discardLogger()})
		sc := NewScheduler(svc, SchedulerConfig{
			MaxSleep: time.Minute / warp,
			Observe:  func(FireResult, time.Time, time.Duration) { fires.Add(1) },
		})
		if stats, err := sc.Load(); err != nil || stats.Scheduled != benchLoadDeployments {
			b.Fatalf("Load: %+v, %v", stats, err)
		}
		if next, _ := sc.Loop().NextFireAt(); next.Before(from.Add(time.Hour)) {
			b.Fatalf("a fire is planned at %s, inside the idle hour", next)
		}
		runtime.GC()

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		readsBefore, cpuBefore := clock.reads.Load(), processCPU(b)
		clock.start()
		go func() { done <- sc.Run(ctx) }()
		<-clock.passed
		wakes += clock.reads.Load() - readsBefore
		cpu += processCPU(b) - cpuBefore
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		if n := fires.Load(); n != 0 {
			b.Fatalf("%d fires during the idle hour", n)
		}
	}
	baselineWakes, baselineCPU := idleTimerBaseline(b, wakes/int64(b.N), time.Minute/warp)
	n := float64(b.N)
	b.ReportMetric(float64(wakes)/n, "wakes/idle-hour")
	b.ReportMetric(float64(cpu.Microseconds())/1000/n, "cpu-ms/idle-hour")
	b.ReportMetric(float64(cpu.Microseconds())/float64(wakes), "cpu-µs/wake")
	b.ReportMetric(float64(baselineCPU.Microseconds())/float64(baselineWakes), "baseline-cpu-µs/wake")
}

// idleTimerBaseline is what waking an otherwise idle Go process costs on
// this machine: one goroutine re-arming one timer `wakes` times, `every`
// apart, with nothing else to do. The loop's own work per idle wake is the
// difference between cpu-µs/wake and this.
func idleTimerBaseline(b *testing.B, wakes int64, every time.Duration) (int64, time.Duration) {
	b.Helper()
	runtime.GC()
	timer := time.NewTimer(every)
	defer timer.Stop()
	cpuBefore := processCPU(b)
	for range wakes {
		<-timer.C
		timer.Reset(every)
	}
	return wakes, processCPU(b) - cpuBefore
}

// BenchmarkSchedulerBurst10k fires 10,000 deployments due at the same
// instant through the whole pipeline (intent, instant in-memory backend,
// run record) on a real bbolt file with fsync, on the real clock shifted so
// the instant is two seconds after the scheduler starts. Each iteration
// works on a fresh copy of the fixture.
//
// Metrics (ns/op includes the two-second lead and setup; ignore it):
//   - s/burst: from the scheduled instant until the 10,000th run is
//     recorded (target < 5 s);
//   - p50/p99-call-lag-ms: scheduled_at → backend CreateSession called;
//   - p50/p99-recorded-lag-ms: scheduled_at → run committed (Observe's lag);
//   - fires/s over the burst.
//
// Sub-benchmarks vary what governs the throughput of db.Batch: the worker
// count (concurrent transactions that can share a commit), the store's
// MaxBatchDelay, and bbolt's MaxBatchSize (a batch commits early once it
// holds that many calls).
func BenchmarkSchedulerBurst10k(b *testing.B) {
	fixture := burstFixture(b)
	variants := []struct {
		name       string
		workers    int
		batchDelay time.Duration
		maxBatch   int // bbolt's MaxBatchSize; 0 keeps its default of 1000
	}{
		// What the daemon runs with: 64 workers, and a batch is full as soon
		// as every worker joined (store.Options.MaxBatchSize = workers).
		{name: "daemon-defaults", workers: 64, maxBatch: 64},
		{name: "workers=256", workers: 256, maxBatch: 256},
		// For comparison: 16 workers and bbolt's own batch defaults (10 ms,
		// 1000 calls), where every commit waits the full delay.
		{name: "workers=16,bbolt-defaults", workers: 16},
		{name: "workers=16,max-batch=16", workers: 16, maxBatch: 16},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			var burst time.Duration
			var callP50, callP99, recordedP50, recordedP99 time.Duration
			for range b.N {
				r := runBurst(b, fixture, v.workers, v.batchDelay, v.maxBatch)
				burst += r.burst
				callP50 += percentile(r.callLags, 50)
				callP99 += percentile(r.callLags, 99)
				recordedP50 += percentile(r.recordedLags, 50)
				recordedP99 += percentile(r.recordedLags, 99)
			}
			n := time.Duration(b.N)
			b.ReportMetric((burst / n).Seconds(), "s/burst")
			b.ReportMetric(float64(benchBurstDeployments)/(burst/n).Seconds(), "fires/s")
			b.ReportMetric(ms(callP50/n), "p50-call-lag-ms")
			b.ReportMetric(ms(callP99/n), "p99-call-lag-ms")
			b.ReportMetric(ms(recordedP50/n), "p50-recorded-lag-ms")
			b.ReportMetric(ms(recordedP99/n), "p99-recorded-lag-ms")
		})
	}
}

type burstResult struct {
	burst                  time.Duration
	callLags, recordedLags []time.Duration
}

// burstLead is how long after Load the burst instant comes on the shifted
// clock.
const burstLead = 2 * time.Second

func runBurst(b *testing.B, fixture string, workers int, batchDelay time.Duration, maxBatch int) burstResult {
	b.Helper()
	path := filepath.Join(b.TempDir(), "burst.db")
	if err := copyBenchFile(fixture, path); err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(path, store.Options{MaxBatchDelay: batchDelay, MaxBatchSize: maxBatch})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()

	var shift atomic.Int64 // the shifted clock is the real clock plus shift
	now := func() time.Time { return time.Now().Add(time.Duration(shift.Load())) }
	const n = benchBurstDeployments
	backend := &lagBackend{Backend: sessionstest.New(map[string]int64{benchAgentID: 1}),
		now: now, scheduledAt: benchBurstInstant, lags: make([]time.Duration, n)}
	recordedLags := make([]time.Duration, n)
	var observed, failed atomic.Int64
	allRecorded := make(chan time.Time, 1)

	shift.Store(int64(benchBurstInstant.Add(-burstLead).Sub(time.Now())))
	svc := NewService(Config{Store: st, Backend: backend, Now: now, Logger: discardLogger()})
	sc := NewScheduler(svc, SchedulerConfig{
		Workers: workers,
		Observe: func(res FireResult, _ time.Time, lag time.Duration) {
			if res.Outcome != FireSucceeded {
				failed.Add(1)
			}
			i := observed.Add(1) - 1
			if i < n {
				recordedLags[i] = lag
			}
			if i == n-1 {
				allRecorded <- now()
			}
		},
	})
	stats, err := sc.Load()
	if err != nil || stats.Scheduled != n {
		b.Fatalf("Load: %+v, %v", stats, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx) }()

	var finished time.Time
	select {
	case finished = <-allRecorded:
	case <-time.After(burstLead + 3*time.Minute):
		b.Fatalf("only %d of %d fires recorded after three minutes", observed.Load(), n)
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if f := failed.Load(); f != 0 {
		b.Fatalf("%d fires did not succeed", f)
	}
	if got := benchStoredRuns(b, svc); got != n {
		b.Fatalf("%d runs stored, want %d", got, n)
	}
	return burstResult{burst: finished.Sub(benchBurstInstant), callLags: backend.lags, recordedLags: recordedLags}
}
