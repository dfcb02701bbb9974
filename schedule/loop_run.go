package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Run hands out due fires until ctx is done. Then it stops handing out new
// fires, drops fires queued but not yet started (they are logged, and the
// caller's restart logic decides about them), waits for running Fire calls
// to return, and returns nil.
//
// Run may be called once per Loop; it errors if LoopConfig.Fire is nil.
func (l *Loop) Run(ctx context.Context) error {
	if l.fire == nil {
		return errors.New("schedule: loop config: Fire is nil")
	}
	if !l.started.CompareAndSwap(false, true) {
		return errors.New("schedule: loop Run called more than once")
	}

	queue := make(chan Due, l.queueSize)
	// In-flight fires finish at shutdown (drain), so they must not inherit
	// the cancellation that triggered it.
	fireCtx := context.WithoutCancel(ctx)
	var dropped atomic.Int64
	var workers sync.WaitGroup
	for range l.workers {
		workers.Go(func() {
			for d := range queue {
				if ctx.Err() != nil {
					dropped.Add(1)
					l.logDropped(ctx, d)
					continue
				}
				l.runFire(fireCtx, d)
			}
		})
	}

	if l.dispatch(ctx, queue) {
		dropped.Add(1)
	}
	close(queue)
	workers.Wait()
	if n := dropped.Load(); n > 0 {
		l.log.Warn("schedule: dropped fires that were due but not started at shutdown", "count", n)
	}
	return nil
}

// dispatch is the loop goroutine: hand out every due entry, then sleep on one
// timer until the earliest entry is due, MaxSleep passes, or a Set changes
// the earliest entry. It never holds the mutex while waiting on the queue.
// It reports whether it popped a fire it could not hand out before ctx ended.
func (l *Loop) dispatch(ctx context.Context, queue chan<- Due) (droppedOne bool) {
	timer := time.NewTimer(l.maxSleep)
	defer timer.Stop()
	// Sets made before Run left a token; the first pass reads the heap anyway.
	select {
	case <-l.wake:
	default:
	}
	for ctx.Err() == nil {
		now := l.now()
		l.mu.Lock()
		d, wait, ok := l.pending.popDue(now)
		l.mu.Unlock()

		if ok {
			l.logDispatch(ctx, d, now)
			select {
			case queue <- d:
			case <-ctx.Done():
				l.logDropped(ctx, d)
				return true
			}
			continue
		}

		if wait <= 0 || wait > l.maxSleep {
			wait = l.maxSleep
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
		case <-l.wake:
		case <-timer.C:
		}
	}
	return false
}

// runFire calls Fire and survives a panic in it: one broken fire must not
// take the scheduler down. The panicking id is not re-planned by the loop.
func (l *Loop) runFire(ctx context.Context, d Due) {
	l.inFlight.Add(1)
	defer l.inFlight.Add(-1)
	defer func() {
		if r := recover(); r != nil {
			l.log.Error("schedule: fire panicked; the deployment is not re-planned until Set again",
				"deployment_id", d.ID, "scheduled_at", d.ScheduledAt,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	l.fire(ctx, d)
}

func (l *Loop) logDispatch(ctx context.Context, d Due, now time.Time) {
	if !l.log.Enabled(ctx, slog.LevelDebug) {
		return // skip building attributes on the hot path
	}
	l.log.LogAttrs(ctx, slog.LevelDebug, "schedule: fire due",
		slog.String("deployment_id", d.ID),
		slog.Time("scheduled_at", d.ScheduledAt),
		slog.Time("fire_at", d.FireAt),
		slog.Duration("late_by", now.Sub(d.FireAt)))
}

func (l *Loop) logDropped(ctx context.Context, d Due) {
	l.log.LogAttrs(context.WithoutCancel(ctx), slog.LevelInfo, "schedule: fire not started because the loop is stopping",
		slog.String("deployment_id", d.ID),
		slog.Time("scheduled_at", d.ScheduledAt),
		slog.Uint64("generation", d.Generation))
}
