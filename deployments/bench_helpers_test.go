package deployments

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sandbox0/sandbox0d/internal/schedmix"
	"github.com/sandbox0/sandbox0d/schedule"
	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/store"
)

// Fixtures and instruments for bench_test.go. The bbolt fixtures are built
// once per test process, on first use by a benchmark, into one temporary
// directory that TestMain removes; plain `go test` never builds them.

// TestMain only removes the benchmark fixtures after the run.
func TestMain(m *testing.M) {
	code := m.Run()
	benchFixtures.remove()
	os.Exit(code)
}

const (
	benchLoadDeployments  = 100_000
	benchBurstDeployments = 10_000
	benchAgentID          = "agent_bench"
)

// benchLoadPlanFrom is the PlanFrom of every deployment in the 100k fixture:
// 30 s past a minute, as if each had last been planned then. A clock at
// benchLoadPlanFrom+10s is a restart with no missed fire; a clock an hour
// before it has no fire due for an hour (plans start at max(PlanFrom, now)).
var benchLoadPlanFrom = time.Date(2030, 1, 15, 10, 0, 30, 0, time.UTC)

// benchBurstInstant is when every deployment of the burst fixture fires: a
// Tuesday noon UTC, written in each zone's own wall time.
var benchBurstInstant = time.Date(2030, 1, 15, 12, 0, 0, 0, time.UTC)

// benchBurstSchedules all fire at benchBurstInstant (January: New York is
// UTC-5, Berlin +1, Kolkata +5:30, Lord Howe +11 in summer time, Tokyo +9,
// Los Angeles -8); none fires again within the following five minutes.
var benchBurstSchedules = []Schedule{
	{"0 12 * * *", "UTC"},
	{"0 12 15 1 *", "UTC"},
	{"0 7 * * *", "America/New_York"},
	{"0 7 * * 1-5", "America/New_York"},
	{"0 13 * * *", "Europe/Berlin"},
	{"0 13 15 * *", "Europe/Berlin"},
	{"30 17 * * *", "Asia/Kolkata"},
	{"30 * * * *", "Asia/Kolkata"},
	{"0 23 * * *", "Australia/Lord_Howe"},
	{"0 23 * * 2", "Australia/Lord_Howe"},
	{"0 21 * * *", "Asia/Tokyo"},
	{"0 4 * * 1-5", "America/Los_Angeles"},
	{"*/15 * * * *", "UTC"},
}

var benchZones = schedmix.Zones

func benchExpression(rng *rand.Rand) string { return schedmix.Expression(rng) }

// benchFixtureSet builds each bbolt fixture at most once per process.
type benchFixtureSet struct {
	dirOnce sync.Once
	dir     string
	dirErr  error

	load, burst benchFixture
}

type benchFixture struct {
	once sync.Once
	path string
	err  error
}

var benchFixtures benchFixtureSet

func (s *benchFixtureSet) tempDir() (string, error) {
	s.dirOnce.Do(func() { s.dir, s.dirErr = os.MkdirTemp("", "sandbox0d-deployments-bench-") })
	return s.dir, s.dirErr
}

func (s *benchFixtureSet) remove() {
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

func (f *benchFixture) get(b *testing.B, name string, build func(path string) error) string {
	b.Helper()
	f.once.Do(func() {
		dir, err := benchFixtures.tempDir()
		if err != nil {
			f.err = fmt.Errorf("fixture directory: %w", err)
			return
		}
		f.path = filepath.Join(dir, name)
		if err := build(f.path); err != nil {
			f.err = fmt.Errorf("build fixture %s: %w", name, err)
		}
	})
	if f.err != nil {
		b.Fatal(f.err)
	}
	return f.path
}

// loadFixture is a bbolt file with 100,000 active scheduled deployments of
// varied expressions and zones, every PlanFrom at benchLoadPlanFrom.
func loadFixture(b *testing.B) string {
	return benchFixtures.load.get(b, "load-100k.db", func(path string) error {
		rng := rand.New(rand.NewPCG(2030, 115))
		return writeBenchDeployments(path, benchLoadDeployments, benchLoadPlanFrom, func(int) Schedule {
			return Schedule{Expression: benchExpression(rng), Timezone: benchZones[rng.IntN(len(benchZones))]}
		})
	})
}

// burstFixture is a bbolt file with 10,000 deployments all due at
// benchBurstInstant, planned from ten minutes before it.
func burstFixture(b *testing.B) string {
	return benchFixtures.burst.get(b, "burst-10k.db", func(path string) error {
		for _, s := range benchBurstSchedules {
			cron, err := schedule.Parse(s.Expression, s.Timezone)
			if err != nil {
				return err
			}
			if next := cron.Next(benchBurstInstant.Add(-10 * time.Minute)); !next.Equal(benchBurstInstant) {
				return fmt.Errorf("burst schedule %q in %s fires at %s, not at the burst instant", s.Expression, s.Timezone, next)
			}
			if next := cron.Next(benchBurstInstant); next.Before(benchBurstInstant.Add(5 * time.Minute)) {
				return fmt.Errorf("burst schedule %q in %s fires again at %s", s.Expression, s.Timezone, next)
			}
		}
		return writeBenchDeployments(path, benchBurstDeployments, benchBurstInstant.Add(-10*time.Minute), func(i int) Schedule {
			return benchBurstSchedules[i%len(benchBurstSchedules)]
		})
	})
}

// writeBenchDeployments stores n deployments shaped like a validated create
// request, written through putDeployment in transactions of 10,000 (one
// fsync each) instead of one Create per deployment.
func writeBenchDeployments(path string, n int, planFrom time.Time, scheduleOf func(i int) Schedule) error {
	template, err := DecodeCreate([]byte(`{
		"name": "nightly-report",
		"description": "Summarise yesterday's incidents for the on-call channel",
		"agent": {"type": "agent", "id": "` + benchAgentID + `", "version": 1},
		"environment_id": "env_bench",
		"initial_events": [{"type": "user.message", "content": [{"type": "text", "text": "Summarise yesterday's incidents and post them."}]}],
		"metadata": {"team": "sre", "tier": "gold"},
		"schedule": {"type": "cron", "expression": "0 9 * * *", "timezone": "UTC"}
	}`))
	if err != nil {
		return fmt.Errorf("decode template: %w", err)
	}
	st, err := store.Open(path, store.Options{})
	if err != nil {
		return err
	}
	created := planFrom.Add(-30 * 24 * time.Hour)
	const perTx = 10_000
	for first := 0; first < n; first += perTx {
		err := st.Update(func(tx *store.Tx) error {
			for i := first; i < min(first+perTx, n); i++ {
				sched := scheduleOf(i)
				at := created.Add(time.Duration(i) * time.Millisecond)
				d := &Deployment{
					ID: NewID(PrefixDeployment), Name: fmt.Sprintf("%s-%d", template.Name, i), Description: template.Description,
					Agent: sessions.AgentRef{ID: benchAgentID, Version: 1}, EnvironmentID: template.EnvironmentID,
					InitialEvents: template.InitialEvents, Metadata: template.Metadata, Schedule: &sched,
					CreatedAt: at, UpdatedAt: at, Generation: 1, PlanFrom: planFrom,
				}
				if err := putDeployment(tx, d); err != nil {
					return fmt.Errorf("deployment %d: %w", i, err)
				}
			}
			return nil
		})
		if err != nil {
			_ = st.Close()
			return err
		}
	}
	return st.Close()
}

// copyBenchFile copies a fixture so a benchmark iteration can write to it.
func copyBenchFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		_ = dst.Close()
		return err
	}
	return dst.Close()
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// heapInUse is the heap in use after a full GC (HeapInuse: live objects
// plus the fragmentation of their spans) and the live bytes alone. The
// second GC empties the sync.Pool victim caches the first one left.
func heapInUse() (inUse, live uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.HeapAlloc
}

// processCPU is the user+system CPU time of the whole process.
func processCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// warpClock runs fast once started: one real second is `warp` seconds of
// its time; before start it stands still, and it stops again at until, so
// whatever happens after the watched window never shows up in it. Every
// reading is counted, so a benchmark can tell how often the loop woke.
type warpClock struct {
	from  time.Time // fake instant at the real start
	warp  time.Duration
	began atomic.Pointer[time.Time] // real start; nil while standing still
	reads atomic.Int64
	// passed is closed by the first reading that reaches until.
	until    time.Time
	passed   chan struct{}
	passOnce sync.Once
}

func newWarpClock(from time.Time, warp time.Duration, until time.Time) *warpClock {
	return &warpClock{from: from, warp: warp, until: until, passed: make(chan struct{})}
}

func (c *warpClock) start() {
	now := time.Now()
	c.began.Store(&now)
}

func (c *warpClock) now() time.Time {
	c.reads.Add(1)
	began := c.began.Load()
	if began == nil {
		return c.from
	}
	t := c.from.Add(time.Since(*began) * c.warp)
	if !t.Before(c.until) {
		c.passOnce.Do(func() { close(c.passed) })
		return c.until
	}
	return t
}

// lagBackend is the instant in-memory backend, timestamping every
// CreateSession against the one instant all burst fires are scheduled at.
type lagBackend struct {
	*sessionstest.Backend
	now         func() time.Time
	scheduledAt time.Time
	calls       atomic.Int64
	lags        []time.Duration // indexed by call order
}

func (l *lagBackend) CreateSession(ctx context.Context, req sessions.CreateRequest) (string, error) {
	lag := l.now().Sub(l.scheduledAt)
	if i := l.calls.Add(1) - 1; int(i) < len(l.lags) {
		l.lags[i] = lag
	}
	return l.Backend.CreateSession(ctx, req)
}

// percentile returns the p-th percentile (0-100) of lags by nearest rank.
func percentile(lags []time.Duration, p float64) time.Duration {
	if len(lags) == 0 {
		return 0
	}
	sorted := slices.Clone(lags)
	slices.Sort(sorted)
	rank := int(p/100*float64(len(sorted))+0.5) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// benchStoredRuns counts the run records in the store, by listing.
func benchStoredRuns(b *testing.B, svc *Service) int {
	b.Helper()
	n := 0
	q := RunQuery{Limit: 1000}
	for {
		page, err := svc.ListRuns(context.Background(), q)
		if err != nil {
			b.Fatal(err)
		}
		n += len(page.Items)
		if page.NextPage == "" || len(page.Items) == 0 {
			return n
		}
		q.Page = page.NextPage
	}
}
