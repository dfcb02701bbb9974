package schedule

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// concurrencyGauge tracks how many Fire calls run at once and the peak.
type concurrencyGauge struct{ running, peak atomic.Int64 }

func (g *concurrencyGauge) enter() {
	n := g.running.Add(1)
	for {
		peak := g.peak.Load()
		if n <= peak || g.peak.CompareAndSwap(peak, n) {
			return
		}
	}
}

func (g *concurrencyGauge) leave() { g.running.Add(-1) }

func TestLoopWorkerPoolIsBoundedAndSetFromFireDoesNotDeadlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			workers   = 3
			queueSize = 4
			entries   = 100
		)
		start := time.Now()
		gate := make(chan struct{})
		var gauge concurrencyGauge
		var started, finished atomic.Int64
		var l *Loop
		l = NewLoop(LoopConfig{
			Workers:   workers,
			QueueSize: queueSize,
			Logger:    discardLoopLogger(),
			Fire: func(_ context.Context, d Due) {
				gauge.enter()
				defer gauge.leave()
				started.Add(1)
				<-gate
				// Re-plan the next fire from inside Fire, as the deployments
				// layer does, while the hand-off queue is full.
				l.Set(d.ID, d.ScheduledAt.Add(time.Hour), d.FireAt.Add(time.Hour), d.Generation+1)
				finished.Add(1)
			},
		})
		for i := range entries {
			l.Set(fmt.Sprintf("dep-%03d", i), start, start, 1)
		}
		startTestLoop(t, l)

		synctest.Wait()
		assert.EqualValues(t, workers, started.Load(), "only the pool's workers are running Fire")
		assert.Equal(t, workers, l.InFlight())
		// Workers hold 3, the queue holds 4 and the loop waits to hand out
		// one more: backpressure, nothing dropped.
		assert.Equal(t, entries-workers-queueSize-1, l.Len())

		gate <- struct{}{} // one Fire calls Set while the queue is still full
		synctest.Wait()
		assert.EqualValues(t, 1, finished.Load(), "Set from inside Fire returned")
		assert.EqualValues(t, workers+1, started.Load())
		assert.Equal(t, entries-workers-queueSize-1, l.Len(), "one entry re-planned, one more handed out")

		close(gate)
		synctest.Wait()
		assert.EqualValues(t, entries, finished.Load(), "every due entry ran")
		assert.EqualValues(t, workers, gauge.peak.Load(), "never more than Workers at once")
		assert.Zero(t, l.InFlight())
		assert.Equal(t, entries, l.Len(), "every entry re-planned itself")
		next, ok := l.NextFireAt()
		require.True(t, ok)
		assert.True(t, next.Equal(start.Add(time.Hour)))

		advanceBubbleClockTo(start.Add(time.Hour))
		assert.EqualValues(t, 2*entries, finished.Load(), "the re-planned fires ran an hour later")
		assert.EqualValues(t, workers, gauge.peak.Load())
	})
}

func TestLoopRunDrainsInFlightFiresAndHandsOutNoMoreAfterCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		gate := make(chan struct{})
		var started, finished atomic.Int64
		var fireCtxErrAfterCancel atomic.Value
		l := NewLoop(LoopConfig{
			Workers: 2,
			Logger:  discardLoopLogger(),
			Fire: func(ctx context.Context, d Due) {
				started.Add(1)
				<-gate
				fireCtxErrAfterCancel.Store(fmt.Sprint(ctx.Err()))
				finished.Add(1)
			},
		})
		for _, id := range []string{"a", "b", "c", "d"} { // two run, two wait in the queue
			l.Set(id, start, start, 1)
		}
		l.Set("later", start.Add(time.Minute), start.Add(time.Minute), 1)
		run := startTestLoop(t, l)
		synctest.Wait()
		require.EqualValues(t, 2, started.Load())
		require.Equal(t, 2, l.InFlight())

		run.cancel()
		synctest.Wait()
		assert.False(t, run.returned(), "Run must wait for in-flight Fire calls")
		assert.Equal(t, 2, l.InFlight())

		l.Set("after-cancel", start, start, 1)
		advanceBubbleClockTo(start.Add(2 * time.Minute))
		assert.EqualValues(t, 2, started.Load(), "no fire is handed out after cancel")

		close(gate)
		synctest.Wait()
		require.True(t, run.returned(), "Run returns once in-flight Fire calls are done")
		require.NoError(t, run.stop())
		assert.EqualValues(t, 2, finished.Load())
		assert.Zero(t, l.InFlight())
		assert.Equal(t, "<nil>", fireCtxErrAfterCancel.Load(), "Fire's context is not cancelled by shutdown")
		assert.Equal(t, 2, l.Len(), "entries never handed out stay planned")
	})
}

func TestLoopRunRejectsMisuse(t *testing.T) {
	t.Run("nil Fire", func(t *testing.T) {
		err := NewLoop(LoopConfig{Logger: discardLoopLogger()}).Run(t.Context())
		require.Error(t, err)
		assert.Contains(t, err.Error(), "Fire")
	})
	t.Run("second Run", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := NewLoop(LoopConfig{Fire: (&loopFireRecorder{}).fire, Logger: discardLoopLogger()})
			startTestLoop(t, l)
			synctest.Wait()
			err := l.Run(t.Context())
			require.Error(t, err)
			assert.Contains(t, err.Error(), "more than once")
		})
	})
}

func TestLoopSurvivesPanickingFire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var logs lockedLogBuffer
		rec := &loopFireRecorder{}
		l := NewLoop(LoopConfig{
			Workers: 1,
			Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
			Fire: func(ctx context.Context, d Due) {
				if d.ID == "broken" {
					panic("boom")
				}
				rec.fire(ctx, d)
			},
		})
		l.Set("broken", start, start, 1)
		l.Set("healthy", start.Add(time.Minute), start.Add(time.Minute), 1)
		startTestLoop(t, l)

		advanceBubbleClockTo(start.Add(time.Minute))
		got := rec.snapshot()
		require.Len(t, got, 1, "the worker survived the panic")
		assert.Equal(t, "healthy", got[0].ID)
		assert.Zero(t, l.InFlight())
		assert.Contains(t, logs.String(), "deployment_id=broken")
		assert.Contains(t, logs.String(), "panic=boom")
	})
}

func TestNewLoopAppliesDefaults(t *testing.T) {
	l := NewLoop(LoopConfig{})
	assert.Equal(t, DefaultLoopWorkers, l.workers)
	assert.Equal(t, DefaultLoopQueueSize, l.queueSize)
	assert.Equal(t, DefaultLoopMaxSleep, l.maxSleep)
	assert.NotNil(t, l.now)
	assert.NotNil(t, l.log)
}
