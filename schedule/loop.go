package schedule

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Loop defaults, applied by NewLoop to zero or negative LoopConfig fields.
const (
	DefaultLoopWorkers   = 8
	DefaultLoopQueueSize = 1024
	DefaultLoopMaxSleep  = time.Minute
)

// Due is one planned fire handed to the worker pool.
type Due struct {
	ID          string    // deployment id
	ScheduledAt time.Time // nominal instant the cron matched (identity of the fire)
	FireAt      time.Time // ScheduledAt plus jitter; when the loop hands it out
	Generation  uint64    // the generation passed to Set; lets the caller detect a stale plan
}

// LoopConfig configures a Loop. Only Fire is required.
type LoopConfig struct {
	// Fire runs one due fire on a worker goroutine. Its context carries the
	// values of Run's context but not its cancellation: at shutdown the loop
	// waits for Fire to return instead of abandoning a half-created session,
	// so Fire must bound its own work.
	Fire func(ctx context.Context, d Due)
	// Workers is the number of goroutines calling Fire (default 8).
	Workers int
	// QueueSize bounds the hand-off queue between the loop and the workers
	// (default 1024). When it is full the loop waits (backpressure); it never
	// drops a due fire while running.
	QueueSize int
	// MaxSleep caps one sleep so a wall-clock step is noticed within it
	// (default 1 minute).
	MaxSleep time.Duration
	// Now reads the wall clock (default time.Now). Sleeps use real timers,
	// so under testing/synctest both follow the bubble's fake clock.
	Now func() time.Time
	// Logger receives panics from Fire and fires dropped at shutdown at
	// Error/Warn/Info, and one Debug line per fire handed out (default
	// slog.Default()).
	Logger *slog.Logger
}

// Loop fires planned deployment fires at their instants. It does not know
// about cron: the caller computes each fire and hands it over with Set.
//
// The loop holds at most one planned fire per id. When a fire is due the
// loop removes it and hands it to a worker, which calls LoopConfig.Fire; the
// caller plans the following fire with Set, typically from inside Fire. An id
// whose fire is not re-planned simply stops firing.
//
// Set, Remove, Len, NextFireAt and InFlight are safe from any goroutine,
// including from inside Fire: they take a short mutex and never wait for
// the loop goroutine, so a Set from Fire cannot deadlock against a loop that
// is blocked on a full queue.
//
// Each planned fire is handed out at most once. Remove and Set do not recall
// a fire already handed out: up to QueueSize+1 fires can be waiting for a
// worker when the caller pauses or re-plans their deployment, so Fire should
// compare Due.Generation with the current plan and skip a stale one.
//
// When Run stops, fires waiting for a worker are dropped and logged, not
// fired; the caller's startup misfire handling decides about them.
type Loop struct {
	fire      func(ctx context.Context, d Due)
	workers   int
	queueSize int
	maxSleep  time.Duration
	now       func() time.Time
	log       *slog.Logger

	mu      sync.Mutex
	pending *pendingFires

	// wake holds at most one token: a burst of Sets that change the
	// earliest fire costs the sleeping loop a single re-arm.
	wake     chan struct{}
	inFlight atomic.Int64
	started  atomic.Bool
}

// NewLoop returns a stopped loop with cfg's zero fields set to defaults.
// Entries may be Set before Run starts.
func NewLoop(cfg LoopConfig) *Loop {
	l := &Loop{
		fire:      cfg.Fire,
		workers:   cfg.Workers,
		queueSize: cfg.QueueSize,
		maxSleep:  cfg.MaxSleep,
		now:       cfg.Now,
		log:       cfg.Logger,
		pending:   newPendingFires(),
		wake:      make(chan struct{}, 1),
	}
	if l.workers <= 0 {
		l.workers = DefaultLoopWorkers
	}
	if l.queueSize <= 0 {
		l.queueSize = DefaultLoopQueueSize
	}
	if l.maxSleep <= 0 {
		l.maxSleep = DefaultLoopMaxSleep
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	return l
}

// Set adds or replaces the planned fire for id in O(log n) and wakes the
// loop if the earliest fire changed. The fire is handed out once the clock
// reaches fireAt; a fireAt already past fires at the loop's next turn.
func (l *Loop) Set(id string, scheduledAt, fireAt time.Time, generation uint64) {
	// Compare on the wall clock: cron instants are wall-clock instants, and
	// a monotonic reading would hide a wall-clock step from the loop.
	fireAt = fireAt.Round(0)
	l.mu.Lock()
	changed := l.pending.set(id, scheduledAt, fireAt, generation)
	l.mu.Unlock()
	if changed {
		l.wakeUp()
	}
}

// Remove drops the planned fire for id in O(log n); it is a no-op if id has
// none. A fire already handed out is not recalled (see Loop).
func (l *Loop) Remove(id string) {
	l.mu.Lock()
	changed := l.pending.remove(id)
	l.mu.Unlock()
	if changed {
		l.wakeUp()
	}
}

// Len returns the number of planned fires not yet handed out.
func (l *Loop) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pending.len()
}

// NextFireAt returns the earliest planned FireAt, or false when none is
// planned; for metrics and readiness.
func (l *Loop) NextFireAt() (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.pending.earliest()
	if e == nil {
		return time.Time{}, false
	}
	return e.fireAt, true
}

// InFlight returns the number of Fire calls currently running.
func (l *Loop) InFlight() int {
	return int(l.inFlight.Load())
}

// Wake makes the loop re-read its clock now. The daemon never needs it (Set
// and Remove wake the loop, and a sleep never exceeds MaxSleep); callers
// whose Now jumps ahead (a fake clock in a benchmark) do.
func (l *Loop) Wake() { l.wakeUp() }

// wakeUp nudges the loop to re-read the heap without ever blocking: if a
// token is already pending, the loop will see this change too.
func (l *Loop) wakeUp() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}
