// Package compare benchmarks sandbox0d's scheduler against robfig/cron and
// gocron. It is a module of its own so that the shipped module does not
// depend on the libraries it is compared with; see README "Comparisons".
package compare

import (
	"container/heap"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gocron "github.com/go-co-op/gocron/v2"
	"github.com/google/uuid"
	"github.com/jonboulle/clockwork"
	robfig "github.com/robfig/cron/v3"

	"github.com/sandbox0/sandbox0d/internal/schedmix"
	"github.com/sandbox0/sandbox0d/schedule"
)

// Side-by-side benchmarks: the same 100,000 (expression, zone) pairs held by
// this package (Parse + Next + Loop.Set, the work the deployments scheduler
// does per deployment), by github.com/robfig/cron/v3 and by
// github.com/go-co-op/gocron/v2. Every library measures its own work in the
// same benchmark run, and the ratios are reported as metrics
// ("robfig/ours-…-x" > 1 means ours is ahead). NextFire cost per call for
// common and rare expressions is BenchmarkNext in next_bench_test.go.
//
// Run with:
//
//	go test ./schedule -run '^$' -bench 'Compare' -benchtime 1x
//
// The schedule mix below is the one the deployments benchmarks store in
// bbolt (deployments/bench_helpers_test.go): test files cannot share code
// across packages, so the generator is repeated there with the same seed.

const compareEntries = 100_000

// compareStart is when every library plans its first fires: a Tuesday in
// January, 30 s past a minute, with no DST transition in the following
// hour in any of compareZones, so all three libraries agree on every fire.
var compareStart = time.Date(2030, 1, 15, 10, 0, 30, 0, time.UTC)

var compareZones = schedmix.Zones

func compareExpression(rng *rand.Rand) string { return schedmix.Expression(rng) }

// comparePlan is the fixture shared by every comparison: ids, schedules,
// the CRON_TZ spec the other libraries take, and how many fires each minute
// of the hour after compareStart holds.
type comparePlan struct {
	ids, expressions, zones, specs []string
	// firesByMinute[m] counts fires at compareStart's minute + m + 1
	// (m = 0..59), computed with Cron.Next.
	firesByMinute [60]int
	fires         int
}

var compareFixture = sync.OnceValues(func() (*comparePlan, error) {
	rng := rand.New(rand.NewPCG(2030, 115))
	p := &comparePlan{
		ids:         make([]string, compareEntries),
		expressions: make([]string, compareEntries),
		zones:       make([]string, compareEntries),
		specs:       make([]string, compareEntries),
	}
	firstBoundary := compareStart.Truncate(time.Minute).Add(time.Minute)
	end := firstBoundary.Add(59 * time.Minute)
	for i := range compareEntries {
		var raw [16]byte
		for j := range raw {
			raw[j] = byte(rng.Uint32())
		}
		p.ids[i] = "depl_" + base64.RawURLEncoding.EncodeToString(raw[:])
		p.expressions[i] = compareExpression(rng)
		p.zones[i] = compareZones[rng.IntN(len(compareZones))]
		p.specs[i] = "CRON_TZ=" + p.zones[i] + " " + p.expressions[i]
		cron, err := schedule.Parse(p.expressions[i], p.zones[i])
		if err != nil {
			return nil, fmt.Errorf("fixture schedule %d (%q in %s): %w", i, p.expressions[i], p.zones[i], err)
		}
		for at := cron.Next(compareStart); !at.After(end); at = cron.Next(at) {
			p.firesByMinute[int(at.Sub(firstBoundary)/time.Minute)]++
			p.fires++
		}
	}
	return p, nil
})

func loadComparePlan(b *testing.B) *comparePlan {
	b.Helper()
	p, err := compareFixture()
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// compareMemory is heap plus goroutine stacks in use after a full GC: the
// memory a structure keeps, including span fragmentation. The second GC
// empties the sync.Pool victim caches the first one left.
func compareMemory() (inUse uint64, goroutines int) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse, runtime.NumGoroutine()
}

// processCPU is the user+system CPU time the whole process has used.
func processCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// addResult is one library's cost of taking the whole plan.
type addResult struct {
	elapsed time.Duration
	bytes   float64 // per entry
	// firedDuringAdd counts jobs a real-clock library fired while being
	// measured (a real minute boundary passed); it should be 0 or small.
	firedDuringAdd int64
	goroutines     int
}

// BenchmarkCompareAdd100k: time and memory to take 100,000 schedules.
//
//   - ours: Parse, Next from compareStart and Loop.Set per schedule, with the
//     compiled crons kept in a map by id (the deployments plan cache holds
//     them the same way), so the loop is ready to fire.
//   - robfig: AddFunc per spec before Start (adding to a running robfig cron
//     re-sorts every entry per add, cron.go:280-284 then 251), then Start and
//     one Entries() round trip, which returns once its run loop has computed
//     every entry's Next and sorted them (cron.go:241-251).
//   - robfig-tuned: robfig as a careful user would hold many zones. Its
//     parser calls time.LoadLocation for every CRON_TZ spec (parser.go
//     Parse), so each entry above carries its own copy of its zone's
//     transitions; here the bare expression is parsed and the
//     SpecSchedule's Location set to one shared *time.Location per zone,
//     then added with Cron.Schedule.
//   - gocron: NewJob(CronJob(spec)) per spec before Start, then Start, which
//     returns once every job has its next run and a runtime timer
//     (scheduler.go selectStart).
//
// robfig and gocron run on the real clock here, as in production, so a real
// minute boundary during the measurement makes them fire some jobs; that
// count is reported. Memory is HeapInuse+StackInuse after GC, before and
// after, divided by the entries; the ids, specs and expressions are the
// caller's and exist before the measurement for all of them. Every
// contender keeps what the daemon needs to update or remove one
// deployment's schedule by its id: ours the loop's own id index, the others
// a map from deployment id to their EntryID or job UUID.
func BenchmarkCompareAdd100k(b *testing.B) {
	p := loadComparePlan(b)
	var ours, rob, robTuned, goc addResult
	for range b.N {
		ours = accumulate(ours, measureOursAdd(b, p))
		rob = accumulate(rob, measureRobfigAdd(b, p))
		robTuned = accumulate(robTuned, measureRobfigTunedAdd(b, p))
		goc = accumulate(goc, measureGocronAdd(b, p))
	}
	n := float64(b.N)
	perAdd := func(r addResult) float64 { return float64(r.elapsed.Nanoseconds()) / n / compareEntries }
	b.ReportMetric(perAdd(ours), "ours-ns/add")
	b.ReportMetric(perAdd(rob), "robfig-ns/add")
	b.ReportMetric(perAdd(robTuned), "robfig-tuned-ns/add")
	b.ReportMetric(perAdd(goc), "gocron-ns/add")
	b.ReportMetric(ours.bytes/n, "ours-B/entry")
	b.ReportMetric(rob.bytes/n, "robfig-B/entry")
	b.ReportMetric(robTuned.bytes/n, "robfig-tuned-B/entry")
	b.ReportMetric(goc.bytes/n, "gocron-B/entry")
	b.ReportMetric(perAdd(rob)/perAdd(ours), "robfig/ours-add-x")
	b.ReportMetric(perAdd(robTuned)/perAdd(ours), "robfig-tuned/ours-add-x")
	b.ReportMetric(perAdd(goc)/perAdd(ours), "gocron/ours-add-x")
	b.ReportMetric(rob.bytes/ours.bytes, "robfig/ours-mem-x")
	b.ReportMetric(robTuned.bytes/ours.bytes, "robfig-tuned/ours-mem-x")
	b.ReportMetric(goc.bytes/ours.bytes, "gocron/ours-mem-x")
	b.ReportMetric(float64(goc.goroutines)/n, "gocron-goroutines")
	b.ReportMetric(float64(rob.firedDuringAdd+robTuned.firedDuringAdd+goc.firedDuringAdd)/n, "real-clock-fires-during-add")
}

func accumulate(sum, r addResult) addResult {
	sum.elapsed += r.elapsed
	sum.bytes += r.bytes
	sum.firedDuringAdd += r.firedDuringAdd
	sum.goroutines += r.goroutines
	return sum
}

func measureOursAdd(b *testing.B, p *comparePlan) addResult {
	memBefore, _ := compareMemory()
	start := time.Now()
	loop := schedule.NewLoop(schedule.LoopConfig{Fire: func(context.Context, schedule.Due) {}, Logger: slog.New(slog.DiscardHandler)})
	crons := make(map[string]*schedule.Cron, compareEntries)
	for i, id := range p.ids {
		// The daemon holds stored schedules through Compile (the strict
		// grammar without the gronx cross-check that new input gets once).
		cron, err := schedule.Compile(p.expressions[i], p.zones[i])
		if err != nil {
			b.Fatal(err)
		}
		next := cron.Next(compareStart)
		loop.Set(id, next, next, 1)
		crons[id] = cron
	}
	elapsed := time.Since(start)
	memAfter, _ := compareMemory()
	runtime.KeepAlive(loop)
	runtime.KeepAlive(crons)
	return addResult{elapsed: elapsed, bytes: float64(int64(memAfter)-int64(memBefore)) / compareEntries}
}

func measureRobfigAdd(b *testing.B, p *comparePlan) addResult {
	var fired atomic.Int64
	memBefore, _ := compareMemory()
	start := time.Now()
	c := robfig.New()
	handles := make(map[string]robfig.EntryID, compareEntries)
	for i, spec := range p.specs {
		id := p.ids[i]
		entry, err := c.AddFunc(spec, func() { fired.Add(1); _ = id })
		if err != nil {
			b.Fatal(err)
		}
		handles[id] = entry
	}
	c.Start()
	if got := len(c.Entries()); got != compareEntries {
		b.Fatalf("robfig holds %d entries, want %d", got, compareEntries)
	}
	elapsed := time.Since(start)
	memAfter, _ := compareMemory()
	runtime.KeepAlive(handles)
	<-c.Stop().Done()
	return addResult{elapsed: elapsed, bytes: float64(int64(memAfter)-int64(memBefore)) / compareEntries,
		firedDuringAdd: fired.Load()}
}

func measureRobfigTunedAdd(b *testing.B, p *comparePlan) addResult {
	var fired atomic.Int64
	memBefore, _ := compareMemory()
	start := time.Now()
	zones := make(map[string]*time.Location, len(compareZones))
	c := robfig.New()
	handles := make(map[string]robfig.EntryID, compareEntries)
	for i, expression := range p.expressions {
		parsed, err := robfig.ParseStandard(expression)
		if err != nil {
			b.Fatal(err)
		}
		spec, ok := parsed.(*robfig.SpecSchedule)
		if !ok {
			b.Fatalf("robfig parsed %q into a %T", expression, parsed)
		}
		loc, ok := zones[p.zones[i]]
		if !ok {
			if loc, err = time.LoadLocation(p.zones[i]); err != nil {
				b.Fatal(err)
			}
			zones[p.zones[i]] = loc
		}
		spec.Location = loc
		id := p.ids[i]
		handles[id] = c.Schedule(spec, robfig.FuncJob(func() { fired.Add(1); _ = id }))
	}
	c.Start()
	if got := len(c.Entries()); got != compareEntries {
		b.Fatalf("robfig holds %d entries, want %d", got, compareEntries)
	}
	elapsed := time.Since(start)
	memAfter, _ := compareMemory()
	runtime.KeepAlive(handles)
	<-c.Stop().Done()
	return addResult{elapsed: elapsed, bytes: float64(int64(memAfter)-int64(memBefore)) / compareEntries,
		firedDuringAdd: fired.Load()}
}

func measureGocronAdd(b *testing.B, p *comparePlan) addResult {
	var fired atomic.Int64
	memBefore, goroutinesBefore := compareMemory()
	start := time.Now()
	s, err := gocron.NewScheduler()
	if err != nil {
		b.Fatal(err)
	}
	handles := make(map[string]uuid.UUID, compareEntries)
	for i, spec := range p.specs {
		id := p.ids[i]
		job, err := s.NewJob(gocron.CronJob(spec, false), gocron.NewTask(func() { fired.Add(1); _ = id }))
		if err != nil {
			b.Fatal(err)
		}
		handles[id] = job.ID()
	}
	s.Start()
	elapsed := time.Since(start)
	memAfter, goroutinesAfter := compareMemory()
	runtime.KeepAlive(handles)
	if err := s.Shutdown(); err != nil {
		b.Fatal(err)
	}
	return addResult{elapsed: elapsed, bytes: float64(int64(memAfter)-int64(memBefore)) / compareEntries,
		firedDuringAdd: fired.Load(), goroutines: goroutinesAfter - goroutinesBefore}
}

// fireResult is one library's cost of one fake hour of fires.
type fireResult struct {
	fires     int
	wall, cpu time.Duration
}

// BenchmarkCompareFireHour100k: cost per fire over one hour of the same
// 100,000 schedules (about 1.8 fires per schedule), every library starting
// from its plan at compareStart and doing its own per-fire work with a no-op
// job. Time is driven minute by minute; the hour's fires all land on minute
// boundaries, as cron fires do. Reported per fire: wall time and process CPU
// time (user+system from getrusage, all goroutines; the fairer number for
// gocron, which spreads a fire over several goroutines).
//
//   - ours: the real Loop (default 8 workers) with an injected clock; Fire
//     looks up the cron by id, computes Next and calls Set, as the
//     deployments scheduler does, so each fire is heap pop + queue hand-off
//     to a worker + Next + heap push.
//   - robfig: its run loop cannot be given a clock (it calls time.Now and
//     time.NewTimer), so its per-wake work is replayed on its own types:
//     for each due entry in sorted order, start the job on a new goroutine,
//     Prev = Next, Next = Schedule.Next(now), log (cron.go:265-277), then
//     sort.Sort all entries with its byTime order (cron.go:251, 77-94) and
//     arm a timer (cron.go:259). The sort of all 100,000 entries happens once
//     per wake, so its cost is spread over that minute's fires. Shared zones
//     (robfig-tuned above) do not change this work.
//   - gocron: its real scheduler and executor, driven through WithClock by
//     benchClock, a fake clockwork.Clock keeping timers in a binary heap
//     (clockwork's own FakeClock re-sorts all timers on every AfterFunc,
//     which at 100,000 timers would measure clockwork, not gocron). Each
//     fire is gocron's timer callback goroutine, executor channel hand-off,
//     job lookup round trip, job goroutine, and rescheduling in the
//     scheduler goroutine (scheduler.go selectExecJobsOutForRescheduling).
func BenchmarkCompareFireHour100k(b *testing.B) {
	p := loadComparePlan(b)
	var ours, rob, goc fireResult
	for range b.N {
		ours = accumulateFires(ours, measureOursFires(b, p))
		rob = accumulateFires(rob, measureRobfigFires(b, p))
		goc = accumulateFires(goc, measureGocronFires(b, p))
	}
	perFire := func(r fireResult, d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(r.fires) }
	b.ReportMetric(float64(p.fires), "fires/hour")
	b.ReportMetric(perFire(ours, ours.wall), "ours-ns/fire")
	b.ReportMetric(perFire(rob, rob.wall), "robfig-ns/fire")
	b.ReportMetric(perFire(goc, goc.wall), "gocron-ns/fire")
	b.ReportMetric(perFire(ours, ours.cpu), "ours-cpu-ns/fire")
	b.ReportMetric(perFire(rob, rob.cpu), "robfig-cpu-ns/fire")
	b.ReportMetric(perFire(goc, goc.cpu), "gocron-cpu-ns/fire")
	b.ReportMetric(perFire(rob, rob.wall)/perFire(ours, ours.wall), "robfig/ours-fire-x")
	b.ReportMetric(perFire(goc, goc.wall)/perFire(ours, ours.wall), "gocron/ours-fire-x")
	b.ReportMetric(perFire(rob, rob.cpu)/perFire(ours, ours.cpu), "robfig/ours-cpu-x")
	b.ReportMetric(perFire(goc, goc.cpu)/perFire(ours, ours.cpu), "gocron/ours-cpu-x")
}

func accumulateFires(sum, r fireResult) fireResult {
	sum.fires += r.fires
	sum.wall += r.wall
	sum.cpu += r.cpu
	return sum
}

// fireCounter counts fires and, when made with signal, signals once the
// count reaches a target set before time moves.
type fireCounter struct {
	count, target atomic.Int64
	reached       chan struct{} // nil: no signal
}

func newFireCounter(signal bool) *fireCounter {
	f := &fireCounter{}
	if signal {
		f.reached = make(chan struct{}, 1)
	}
	return f
}

func (f *fireCounter) fired() {
	if f.count.Add(1) == f.target.Load() && f.reached != nil {
		f.reached <- struct{}{}
	}
}

// expect raises the target by n and reports whether the caller must wait.
func (f *fireCounter) expect(n int) bool {
	if n == 0 {
		return false
	}
	f.target.Add(int64(n))
	return true
}

// minuteBoundary is the instant of minute m (0-based) of the hour.
func minuteBoundary(m int) time.Time {
	return compareStart.Truncate(time.Minute).Add(time.Duration(m+1) * time.Minute)
}

func measureOursFires(b *testing.B, p *comparePlan) fireResult {
	crons := make(map[string]*schedule.Cron, compareEntries)
	var clock atomic.Int64
	clock.Store(compareStart.UnixNano())
	counter := newFireCounter(true)
	var loop *schedule.Loop
	loop = schedule.NewLoop(schedule.LoopConfig{
		Fire: func(_ context.Context, d schedule.Due) {
			next := crons[d.ID].Next(d.ScheduledAt)
			loop.Set(d.ID, next, next, d.Generation)
			counter.fired()
		},
		Now:      func() time.Time { return time.Unix(0, clock.Load()) },
		MaxSleep: time.Hour,
		Logger:   slog.New(slog.DiscardHandler),
	})
	for i, id := range p.ids {
		cron, err := schedule.Parse(p.expressions[i], p.zones[i])
		if err != nil {
			b.Fatal(err)
		}
		crons[id] = cron
		next := cron.Next(compareStart)
		loop.Set(id, next, next, 1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- loop.Run(ctx) }()
	runtime.GC()

	cpuStart, start := processCPU(b), time.Now()
	for m := range p.firesByMinute {
		wait := counter.expect(p.firesByMinute[m])
		clock.Store(minuteBoundary(m).UnixNano())
		loop.Wake()
		if wait {
			<-counter.reached
		}
	}
	res := fireResult{fires: int(counter.count.Load()), wall: time.Since(start), cpu: processCPU(b) - cpuStart}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	checkFires(b, "ours", res.fires, p.fires)
	return res
}

// robfigByTime orders entries exactly as robfig's unexported byTime
// (cron.go:77-94): by Next, zero times last.
type robfigByTime []*robfig.Entry

func (s robfigByTime) Len() int      { return len(s) }
func (s robfigByTime) Swap(i, j int) { s[i], s[j] = s[j], s[i] }
func (s robfigByTime) Less(i, j int) bool {
	if s[i].Next.IsZero() {
		return false
	}
	if s[j].Next.IsZero() {
		return true
	}
	return s[i].Next.Before(s[j].Next)
}

func measureRobfigFires(b *testing.B, p *comparePlan) fireResult {
	counter := newFireCounter(false) // robfig's loop never waits for its jobs
	entries := make([]*robfig.Entry, compareEntries)
	for i, spec := range p.specs {
		schedule, err := robfig.ParseStandard(spec)
		if err != nil {
			b.Fatal(err)
		}
		id := p.ids[i]
		job := robfig.FuncJob(func() { counter.fired(); _ = id })
		entries[i] = &robfig.Entry{ID: robfig.EntryID(i + 1), Schedule: schedule, WrappedJob: job, Job: job}
		entries[i].Next = schedule.Next(compareStart)
	}
	sort.Sort(robfigByTime(entries))
	logger := robfig.DefaultLogger
	var jobs sync.WaitGroup
	runtime.GC()

	cpuStart, start := processCPU(b), time.Now()
	for m := range p.firesByMinute {
		now := minuteBoundary(m)
		for _, e := range entries {
			if e.Next.After(now) || e.Next.IsZero() {
				break
			}
			jobs.Go(e.WrappedJob.Run)
			e.Prev = e.Next
			e.Next = e.Schedule.Next(now)
			logger.Info("run", "now", now, "entry", e.ID, "next", e.Next)
		}
		sort.Sort(robfigByTime(entries))
		time.NewTimer(entries[0].Next.Sub(now)).Stop()
	}
	jobs.Wait()
	res := fireResult{fires: int(counter.count.Load()), wall: time.Since(start), cpu: processCPU(b) - cpuStart}
	checkFires(b, "robfig", res.fires, p.fires)
	return res
}

func measureGocronFires(b *testing.B, p *comparePlan) fireResult {
	counter := newFireCounter(true)
	clock := newBenchClock(compareStart)
	s, err := gocron.NewScheduler(gocron.WithClock(clock))
	if err != nil {
		b.Fatal(err)
	}
	for i, spec := range p.specs {
		id := p.ids[i]
		if _, err := s.NewJob(gocron.CronJob(spec, false), gocron.NewTask(func() { counter.fired(); _ = id })); err != nil {
			b.Fatal(err)
		}
	}
	s.Start()
	clock.waitTimers(compareEntries)
	runtime.GC()

	cpuStart, start := processCPU(b), time.Now()
	for m := range p.firesByMinute {
		wait := counter.expect(p.firesByMinute[m])
		clock.advanceTo(minuteBoundary(m))
		if wait {
			<-counter.reached
		}
		// Every fired job is re-armed before time moves on.
		clock.waitTimers(compareEntries)
	}
	res := fireResult{fires: int(counter.count.Load()), wall: time.Since(start), cpu: processCPU(b) - cpuStart}
	if err := s.Shutdown(); err != nil {
		b.Fatal(err)
	}
	checkFires(b, "gocron", res.fires, p.fires)
	return res
}

func checkFires(b *testing.B, who string, got, want int) {
	b.Helper()
	if got != want {
		b.Fatalf("%s fired %d times in the hour, Cron.Next says %d", who, got, want)
	}
}

// benchClock is a fake clockwork.Clock whose timers live in a binary heap,
// so arming and firing one of 100,000 timers is O(log n), like the
// runtime's own timers. Time moves only through advanceTo.
type benchClock struct {
	mu     sync.Mutex
	now    time.Time
	timers benchTimerHeap
	armed  *sync.Cond // broadcast whenever a timer is armed
}

var _ clockwork.Clock = (*benchClock)(nil)

func newBenchClock(start time.Time) *benchClock {
	c := &benchClock{now: start}
	c.armed = sync.NewCond(&c.mu)
	return c
}

func (c *benchClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *benchClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }
func (c *benchClock) Until(t time.Time) time.Duration { return t.Sub(c.Now()) }

func (c *benchClock) NewTimer(d time.Duration) clockwork.Timer {
	t := &benchTimer{clock: c, ch: make(chan time.Time, 1), index: -1}
	c.arm(t, d)
	return t
}

func (c *benchClock) AfterFunc(d time.Duration, f func()) clockwork.Timer {
	t := &benchTimer{clock: c, fn: f, index: -1}
	c.arm(t, d)
	return t
}

func (c *benchClock) After(d time.Duration) <-chan time.Time { return c.NewTimer(d).Chan() }
func (c *benchClock) Sleep(d time.Duration)                  { <-c.After(d) }

// NewTicker is not used by gocron's cron jobs; it ticks on the real clock.
func (c *benchClock) NewTicker(d time.Duration) clockwork.Ticker {
	return clockwork.NewRealClock().NewTicker(d)
}

func (c *benchClock) arm(t *benchTimer, d time.Duration) {
	c.mu.Lock()
	t.at = c.now.Add(d)
	if d <= 0 {
		c.mu.Unlock()
		t.expire()
		return
	}
	heap.Push(&c.timers, t)
	c.armed.Broadcast()
	c.mu.Unlock()
}

// advanceTo moves the clock and expires every timer due by then, each
// AfterFunc on its own goroutine as time.AfterFunc does.
func (c *benchClock) advanceTo(to time.Time) {
	c.mu.Lock()
	c.now = to
	var due []*benchTimer
	for len(c.timers) > 0 && !c.timers[0].at.After(to) {
		due = append(due, heap.Pop(&c.timers).(*benchTimer))
	}
	c.mu.Unlock()
	for _, t := range due {
		t.expire()
	}
}

// waitTimers blocks until at least n timers are armed.
func (c *benchClock) waitTimers(n int) {
	c.mu.Lock()
	for len(c.timers) < n {
		c.armed.Wait()
	}
	c.mu.Unlock()
}

type benchTimer struct {
	clock *benchClock
	at    time.Time
	fn    func()
	ch    chan time.Time
	index int // in benchTimerHeap; -1 when not armed
}

func (t *benchTimer) expire() {
	if t.fn != nil {
		go t.fn()
		return
	}
	select {
	case t.ch <- t.at:
	default:
	}
}

func (t *benchTimer) Chan() <-chan time.Time { return t.ch }

func (t *benchTimer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&c.timers, t.index)
	return true
}

func (t *benchTimer) Reset(d time.Duration) bool {
	wasArmed := t.Stop()
	t.clock.arm(t, d)
	return wasArmed
}

type benchTimerHeap []*benchTimer

func (h benchTimerHeap) Len() int           { return len(h) }
func (h benchTimerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h benchTimerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *benchTimerHeap) Push(x any) {
	t := x.(*benchTimer)
	t.index = len(*h)
	*h = append(*h, t)
}

func (h *benchTimerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*h = old[:len(old)-1]
	return t
}
