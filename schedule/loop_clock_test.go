package schedule

import (
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingClock is a LoopConfig.Now that records every bubble instant at
// which the loop read the clock; each read is one loop wake-up.
type countingClock struct {
	mu    sync.Mutex
	reads []time.Time
}

func (c *countingClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.reads = append(c.reads, now)
	return now
}

func (c *countingClock) snapshot() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.reads...)
}

func TestLoopSleepIsCappedByMaxSleepAndSetWakesIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		clock := &countingClock{}
		rec := &loopFireRecorder{}
		l := NewLoop(LoopConfig{Fire: rec.fire, MaxSleep: time.Minute, Now: clock.now, Logger: discardLoopLogger()})
		l.Set("far", start.Add(3*time.Hour), start.Add(3*time.Hour), 1)
		startTestLoop(t, l)

		advanceBubbleClockTo(start.Add(2 * time.Hour))
		reads := clock.snapshot()
		// One read at start and one per minute: capped, and no busy loop.
		require.Len(t, reads, 121)
		assert.True(t, reads[0].Equal(start))
		for i := 1; i < len(reads); i++ {
			assert.Equal(t, time.Minute, reads[i].Sub(reads[i-1]), "gap before wake %d", i)
		}
		assert.Zero(t, rec.count())

		// Mid-sleep, an earlier entry gets the loop up right away.
		advanceBubbleClockTo(start.Add(2*time.Hour + 20*time.Second))
		soon := start.Add(2*time.Hour + 25*time.Second)
		l.Set("soon", soon, soon, 1)
		synctest.Wait()
		reads = clock.snapshot()
		require.Len(t, reads, 122)
		assert.True(t, reads[121].Equal(start.Add(2*time.Hour+20*time.Second)), "woken at %v", reads[121])

		advanceBubbleClockTo(soon)
		got := rec.snapshot()
		require.Len(t, got, 1)
		assert.Equal(t, "soon", got[0].ID)
		assert.True(t, got[0].At.Equal(soon))

		advanceBubbleClockTo(start.Add(3 * time.Hour))
		got = rec.snapshot()
		require.Len(t, got, 2)
		assert.Equal(t, "far", got[1].ID)
		assert.True(t, got[1].At.Equal(start.Add(3*time.Hour)))
	})
}

func TestLoopSetThatDoesNotChangeTheEarliestFireDoesNotWakeTheLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		clock := &countingClock{}
		l := NewLoop(LoopConfig{Fire: (&loopFireRecorder{}).fire, MaxSleep: time.Hour, Now: clock.now, Logger: discardLoopLogger()})
		l.Set("first", start.Add(10*time.Minute), start.Add(10*time.Minute), 1)
		startTestLoop(t, l)
		synctest.Wait()
		require.Len(t, clock.snapshot(), 1)

		for i := range 50 {
			at := start.Add(time.Duration(20+i) * time.Minute)
			l.Set("later", at, at, uint64(i))
		}
		synctest.Wait()
		assert.Len(t, clock.snapshot(), 1, "a burst of Sets behind the earliest entry costs no wake-up")
	})
}

// steppedWallClock is a LoopConfig.Now whose wall clock runs offset from the
// bubble clock, like a host whose clock NTP or an operator steps.
type steppedWallClock struct{ offset atomic.Int64 }

func (c *steppedWallClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *steppedWallClock) step(d time.Duration) {
	c.offset.Add(int64(d))
}

func TestLoopNoticesWallClockStepsWithinMaxSleep(t *testing.T) {
	tests := []struct {
		name string
		// fireAfter is when the entry is planned, on the wall clock, after start.
		fireAfter time.Duration
		step      time.Duration
		// wantFireAfter is when it must fire on the bubble (monotonic) clock.
		wantFireAfter time.Duration
	}{
		{
			name:      "forward step makes an entry due: it fires at the next capped wake",
			fireAfter: 2 * time.Hour, step: 3 * time.Hour,
			wantFireAfter: time.Minute,
		},
		{
			name:      "backward step delays an entry by the step",
			fireAfter: 30 * time.Minute, step: -time.Hour,
			wantFireAfter: 90 * time.Minute,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				clock := &steppedWallClock{}
				rec := &loopFireRecorder{}
				l := NewLoop(LoopConfig{Fire: rec.fire, MaxSleep: time.Minute, Now: clock.now, Logger: discardLoopLogger()})
				fireAt := start.Add(tt.fireAfter)
				l.Set("dep", fireAt, fireAt, 1)
				startTestLoop(t, l)

				advanceBubbleClockTo(start.Add(10 * time.Second))
				clock.step(tt.step) // no Set, no wake: only the capped sleep can notice

				advanceBubbleClockTo(start.Add(tt.wantFireAfter - time.Nanosecond))
				require.Zero(t, rec.count(), "fired before the loop could have noticed the step")
				advanceBubbleClockTo(start.Add(tt.wantFireAfter))
				got := rec.snapshot()
				require.Len(t, got, 1)
				assert.Equal(t, tt.wantFireAfter, got[0].At.Sub(start))
				assert.True(t, got[0].FireAt.Equal(fireAt), "the Due keeps the planned instant")
			})
		})
	}
}
