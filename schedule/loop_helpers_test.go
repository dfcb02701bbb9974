package schedule

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
)

// loopFire is one observed Fire call and the bubble time it started.
type loopFire struct {
	Due
	At time.Time
}

// loopFireRecorder is a Fire func that records every call.
type loopFireRecorder struct {
	mu    sync.Mutex
	fires []loopFire
}

func (r *loopFireRecorder) fire(_ context.Context, d Due) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fires = append(r.fires, loopFire{Due: d, At: time.Now()})
}

func (r *loopFireRecorder) snapshot() []loopFire {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]loopFire(nil), r.fires...)
}

func (r *loopFireRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.fires)
}

// runningTestLoop is a Loop whose Run executes on its own goroutine inside
// the test's synctest bubble.
type runningTestLoop struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// startTestLoop runs l until the test ends (or stop is called) and makes
// the test fail if Run returns an error.
func startTestLoop(t *testing.T, l *Loop) *runningTestLoop {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningTestLoop{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- l.Run(ctx) }()
	t.Cleanup(func() { assert.NoError(t, r.stop()) })
	return r
}

// stop cancels Run and waits for it to drain and return.
func (r *runningTestLoop) stop() error {
	r.once.Do(func() {
		r.cancel()
		r.err = <-r.done
	})
	return r.err
}

// returned reports, without blocking, whether Run has returned.
func (r *runningTestLoop) returned() bool {
	select {
	case err := <-r.done:
		r.done <- err // keep it for stop
		return true
	default:
		return false
	}
}

// advanceBubbleClockTo moves the synctest bubble's fake clock to instant and
// then waits until every goroutine in the bubble is idle, so whatever the
// loop does at that instant has happened. Nothing here waits in real time.
func advanceBubbleClockTo(instant time.Time) {
	if d := time.Until(instant); d > 0 {
		time.Sleep(d)
	}
	synctest.Wait()
}

// assertSameDue compares two Dues by instant rather than by time.Time
// representation (location pointer, monotonic reading).
func assertSameDue(t *testing.T, want, got Due, msgAndArgs ...any) {
	t.Helper()
	assert.Equal(t, want.ID, got.ID, msgAndArgs...)
	assert.Equal(t, want.Generation, got.Generation, msgAndArgs...)
	assert.True(t, want.ScheduledAt.Equal(got.ScheduledAt), "ScheduledAt: want %v, got %v %v", want.ScheduledAt, got.ScheduledAt, msgAndArgs)
	assert.True(t, want.FireAt.Equal(got.FireAt), "FireAt: want %v, got %v %v", want.FireAt, got.FireAt, msgAndArgs)
}

func discardLoopLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// lockedLogBuffer collects log output written from worker goroutines.
type lockedLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
