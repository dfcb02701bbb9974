package schedule

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

const benchEntries = 100_000

var benchBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// benchPlan returns realistic deployment ids and fire instants spread over
// a day, so heap operations see a random order.
func benchPlan(n int, seed uint64) (ids []string, fireAts []time.Time) {
	rng := rand.New(rand.NewPCG(seed, seed))
	ids = make([]string, n)
	fireAts = make([]time.Time, n)
	for i := range n {
		ids[i] = fmt.Sprintf("depl_%019d", rng.Uint64()%1e19)
		fireAts[i] = benchBase.Add(time.Duration(rng.Int64N(int64(24 * time.Hour))))
	}
	return ids, fireAts
}

func newBenchLoop(fire func(context.Context, Due)) *Loop {
	return NewLoop(LoopConfig{Fire: fire, Logger: discardLoopLogger()})
}

func liveHeapBytes() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkLoopSet100k fills an empty loop with 100,000 planned fires per
// op; bytes/entry is the loop's own memory (heap slot, entry, index map),
// not counting the caller's id strings.
func BenchmarkLoopSet100k(b *testing.B) {
	ids, fireAts := benchPlan(benchEntries, 1)
	fill := func() *Loop {
		l := newBenchLoop(func(context.Context, Due) {})
		for i, id := range ids {
			l.Set(id, fireAts[i], fireAts[i], 1)
		}
		return l
	}

	before := liveHeapBytes()
	l := fill()
	after := liveHeapBytes()
	runtime.KeepAlive(l)
	l = nil

	for b.Loop() {
		fill()
	}
	b.ReportMetric(float64(after-before)/benchEntries, "bytes/entry")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchEntries, "ns/entry")
}

// BenchmarkLoopUpdate moves random existing entries of a 100,000-entry loop
// to new instants: the cost of re-planning one deployment.
func BenchmarkLoopUpdate(b *testing.B) {
	ids, fireAts := benchPlan(benchEntries, 2)
	l := newBenchLoop(func(context.Context, Due) {})
	for i, id := range ids {
		l.Set(id, fireAts[i], fireAts[i], 1)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	const updates = 1 << 16
	pick := make([]int, updates)
	moveTo := make([]time.Time, updates)
	for i := range updates {
		pick[i] = rng.IntN(benchEntries)
		moveTo[i] = benchBase.Add(time.Duration(rng.Int64N(int64(24 * time.Hour))))
	}

	i := 0
	for b.Loop() {
		k := i % updates
		l.Set(ids[pick[k]], moveTo[k], moveTo[k], uint64(i))
		i++
	}
}

// BenchmarkLoopDispatch measures one fire from the heap to a no-op Fire:
// pop, hand-off through the queue and the worker call, with the heap
// draining from up to 100,000 due entries. Entries are planned with the
// timer stopped and become due by moving the injected clock.
func BenchmarkLoopDispatch(b *testing.B) {
	ids, fireAts := benchPlan(benchEntries, 4)
	var wallClock atomic.Int64
	wallClock.Store(benchBase.UnixNano())
	var fired, target atomic.Int64
	roundDone := make(chan struct{}, 1)
	l := NewLoop(LoopConfig{
		Fire: func(context.Context, Due) {
			if fired.Add(1) == target.Load() {
				roundDone <- struct{}{}
			}
		},
		Now:      func() time.Time { return time.Unix(0, wallClock.Load()) },
		MaxSleep: time.Hour,
		Logger:   discardLoopLogger(),
	})
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- l.Run(ctx) }()

	b.ResetTimer()
	day := 0
	for remaining := b.N; remaining > 0; day++ {
		n := min(remaining, benchEntries)
		b.StopTimer()
		// Plan the round a day ahead of the injected clock: nothing is due yet.
		offset := time.Duration(day+1) * 24 * time.Hour
		for i := range n {
			at := fireAts[i].Add(offset)
			l.Set(ids[i], at, at, 1)
		}
		target.Add(int64(n))
		b.StartTimer()

		wallClock.Store(benchBase.Add(offset + 24*time.Hour).UnixNano())
		l.wakeUp()
		<-roundDone
		remaining -= n
	}
	b.StopTimer()
	cancel()
	if err := <-runErr; err != nil {
		b.Fatal(err)
	}
}

func BenchmarkJitter(b *testing.B) {
	for b.Loop() {
		Jitter("depl_01JH3X8Y2ZK4", benchBase, benchBase.Add(time.Minute), 10*time.Second)
	}
}
