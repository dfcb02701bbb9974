package schedule

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoopFiresEntriesAtTheirInstantsInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		rec := &loopFireRecorder{}
		// One worker keeps hand-out order observable as Fire order.
		l := NewLoop(LoopConfig{Fire: rec.fire, Workers: 1, Logger: discardLoopLogger()})

		// 200 deployments over 6 hours on whole minutes, so many share an
		// instant; every other one gets a jitter so instants also fall
		// between minutes.
		rng := rand.New(rand.NewPCG(1, 2))
		var want []Due
		for i := range 200 {
			id := fmt.Sprintf("dep-%03d", rng.IntN(1000)*1000+i)
			scheduledAt := start.Add(time.Duration(1+rng.IntN(360)) * time.Minute)
			fireAt := scheduledAt
			if i%2 == 1 {
				fireAt = fireAt.Add(Jitter(id, scheduledAt, time.Time{}, 10*time.Second))
			}
			l.Set(id, scheduledAt, fireAt, uint64(i))
			want = append(want, Due{ID: id, ScheduledAt: scheduledAt, FireAt: fireAt, Generation: uint64(i)})
		}
		slices.SortFunc(want, func(a, b Due) int {
			return cmp.Or(a.FireAt.Compare(b.FireAt), cmp.Compare(a.ID, b.ID))
		})
		startTestLoop(t, l)

		// Stop the clock just before and exactly at every distinct instant.
		for i, d := range want {
			if i > 0 && d.FireAt.Equal(want[i-1].FireAt) {
				continue
			}
			firedBefore := slices.IndexFunc(want, func(w Due) bool { return !w.FireAt.Before(d.FireAt) })
			firedAt := slices.IndexFunc(want, func(w Due) bool { return w.FireAt.After(d.FireAt) })
			if firedAt < 0 {
				firedAt = len(want)
			}
			advanceBubbleClockTo(d.FireAt.Add(-time.Nanosecond))
			require.Equal(t, firedBefore, rec.count(), "fires handed out before %v", d.FireAt)
			advanceBubbleClockTo(d.FireAt)
			require.Equal(t, firedAt, rec.count(), "fires handed out at %v", d.FireAt)
		}

		got := rec.snapshot()
		require.Len(t, got, len(want))
		for i := range want {
			assertSameDue(t, want[i], got[i].Due, "fire #%d", i)
			assert.True(t, got[i].At.Equal(want[i].FireAt), "fire #%d (%s) ran at %v, want %v", i, want[i].ID, got[i].At, want[i].FireAt)
		}
		assert.Zero(t, l.Len(), "fired entries leave the heap")
		_, ok := l.NextFireAt()
		assert.False(t, ok)
	})
}

func TestLoopSetAndRemoveChangePlannedFires(t *testing.T) {
	type wantFire struct {
		id         string
		after      time.Duration
		generation uint64
	}
	tests := []struct {
		name   string
		plan   func(l *Loop, start time.Time)
		change func(l *Loop, start time.Time)
		want   []wantFire
	}{
		{
			name: "set moves a fire earlier",
			plan: func(l *Loop, start time.Time) {
				l.Set("a", start.Add(10*time.Minute), start.Add(10*time.Minute), 1)
			},
			change: func(l *Loop, start time.Time) {
				l.Set("a", start.Add(5*time.Minute), start.Add(5*time.Minute), 2)
			},
			want: []wantFire{{"a", 5 * time.Minute, 2}},
		},
		{
			name: "set moves a fire later",
			plan: func(l *Loop, start time.Time) {
				l.Set("a", start.Add(5*time.Minute), start.Add(5*time.Minute), 1)
			},
			change: func(l *Loop, start time.Time) {
				l.Set("a", start.Add(20*time.Minute), start.Add(20*time.Minute+3*time.Second), 2)
			},
			want: []wantFire{{"a", 20*time.Minute + 3*time.Second, 2}},
		},
		{
			name: "set moves a non-earliest fire before the earliest",
			plan: func(l *Loop, start time.Time) {
				l.Set("a", start.Add(10*time.Minute), start.Add(10*time.Minute), 1)
				l.Set("b", start.Add(30*time.Minute), start.Add(30*time.Minute), 1)
			},
			change: func(l *Loop, start time.Time) {
				l.Set("b", start.Add(2*time.Minute), start.Add(2*time.Minute), 2)
			},
			want: []wantFire{{"b", 2 * time.Minute, 2}, {"a", 10 * time.Minute, 1}},
		},
		{
			name: "remove stops the earliest fire",
			plan: func(l *Loop, start time.Time) {
				l.Set("a", start.Add(5*time.Minute), start.Add(5*time.Minute), 1)
				l.Set("b", start.Add(7*time.Minute), start.Add(7*time.Minute), 1)
			},
			change: func(l *Loop, _ time.Time) { l.Remove("a") },
			want:   []wantFire{{"b", 7 * time.Minute, 1}},
		},
		{
			name: "remove of an unknown id changes nothing",
			plan: func(l *Loop, start time.Time) {
				l.Set("a", start.Add(5*time.Minute), start.Add(5*time.Minute), 1)
			},
			change: func(l *Loop, _ time.Time) { l.Remove("never-set") },
			want:   []wantFire{{"a", 5 * time.Minute, 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				rec := &loopFireRecorder{}
				l := NewLoop(LoopConfig{Fire: rec.fire, Workers: 1, Logger: discardLoopLogger()})
				tt.plan(l, start)
				startTestLoop(t, l)
				advanceBubbleClockTo(start.Add(time.Minute)) // the loop is asleep on the original plan
				tt.change(l, start)

				advanceBubbleClockTo(start.Add(2 * time.Hour))
				got := rec.snapshot()
				require.Len(t, got, len(tt.want))
				for i, w := range tt.want {
					assert.Equal(t, w.id, got[i].ID)
					assert.Equal(t, w.generation, got[i].Generation)
					assert.Equal(t, w.after, got[i].At.Sub(start), "fire of %s", w.id)
					assert.True(t, got[i].At.Equal(got[i].FireAt), "fire of %s ran at its FireAt", w.id)
				}
				assert.Zero(t, l.Len())
			})
		})
	}
}

func TestLoopSetOfEarlierEntryWakesSleepingLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		rec := &loopFireRecorder{}
		// A day-long MaxSleep: only the wake channel can get the loop up in time.
		l := NewLoop(LoopConfig{Fire: rec.fire, MaxSleep: 24 * time.Hour, Logger: discardLoopLogger()})
		l.Set("late", start.Add(6*time.Hour), start.Add(6*time.Hour), 1)
		startTestLoop(t, l)

		advanceBubbleClockTo(start.Add(time.Minute))
		early := start.Add(2 * time.Minute)
		l.Set("early", early, early, 1)
		next, ok := l.NextFireAt()
		require.True(t, ok)
		assert.True(t, next.Equal(early), "NextFireAt = %v, want %v", next, early)

		advanceBubbleClockTo(early)
		got := rec.snapshot()
		require.Len(t, got, 1, "the early entry fires without waiting for the late one")
		assert.Equal(t, "early", got[0].ID)
		assert.True(t, got[0].At.Equal(early), "fired at %v, want %v", got[0].At, early)
		assert.Equal(t, 1, l.Len())

		advanceBubbleClockTo(start.Add(6 * time.Hour))
		assert.Equal(t, 2, rec.count())
	})
}

func TestLoopFiresPastEntriesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		rec := &loopFireRecorder{}
		l := NewLoop(LoopConfig{Fire: rec.fire, Workers: 1, Logger: discardLoopLogger()})
		missed := start.Add(-30 * time.Second) // e.g. a misfire the caller decided to run
		l.Set("missed", missed, missed, 4)
		startTestLoop(t, l)

		synctest.Wait()
		got := rec.snapshot()
		require.Len(t, got, 1)
		assertSameDue(t, Due{ID: "missed", ScheduledAt: missed, FireAt: missed, Generation: 4}, got[0].Due)
		assert.True(t, got[0].At.Equal(start))
	})
}

func TestLoopComparesFireInstantsOnTheWallClock(t *testing.T) {
	// time.Now carries a monotonic reading; were it kept, comparisons with
	// it would ignore wall-clock steps, and cron instants are wall-clock.
	fireAt := time.Now().Add(time.Hour)
	l := NewLoop(LoopConfig{Logger: discardLoopLogger()})
	l.Set("dep", fireAt, fireAt, 1)
	next, ok := l.NextFireAt()
	require.True(t, ok)
	assert.True(t, next.Equal(fireAt))
	assert.Equal(t, fireAt.Round(0), next, "the planned instant has no monotonic reading")
}
