package schedule

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJitterStaysInsideItsWindow(t *testing.T) {
	at := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		next     time.Time
		maxDelay time.Duration
		// wantBelow is the exclusive upper bound; 0 means the result must be 0.
		wantBelow time.Duration
	}{
		{name: "no jitter configured", next: at.Add(time.Minute), maxDelay: 0},
		{name: "negative max", next: at.Add(time.Minute), maxDelay: -time.Second},
		{name: "no next fire known", maxDelay: 10 * time.Second, wantBelow: 10 * time.Second},
		{name: "next fire beyond max", next: at.Add(time.Hour), maxDelay: 10 * time.Second, wantBelow: 10 * time.Second},
		{name: "next fire inside max", next: at.Add(3 * time.Second), maxDelay: 10 * time.Second, wantBelow: 3 * time.Second},
		{name: "next fire one nanosecond later", next: at.Add(time.Nanosecond), maxDelay: 10 * time.Second},
		{name: "next fire at the same instant", next: at, maxDelay: 10 * time.Second},
		{name: "next fire before scheduledAt", next: at.Add(-time.Minute), maxDelay: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range 500 {
				id := fmt.Sprintf("depl_%04d", i)
				got := Jitter(id, at, tt.next, tt.maxDelay)
				if tt.wantBelow == 0 {
					require.Zero(t, got, "id %s", id)
					continue
				}
				require.GreaterOrEqual(t, got, time.Duration(0), "id %s", id)
				require.Less(t, got, tt.wantBelow, "id %s", id)
				if !tt.next.IsZero() {
					require.True(t, at.Add(got).Before(tt.next), "id %s: jittered fire reaches the next fire", id)
				}
			}
		})
	}
}

func TestJitterIsDeterministicPerFire(t *testing.T) {
	at := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	const maxDelay = 10 * time.Second

	// Pinned values: a change here moves every jittered fire of every
	// install, so it must be deliberate (e.g. not a switch to a hash seeded
	// per process, which would pass the in-process checks below).
	assert.Equal(t, time.Duration(2967722826), Jitter("depl_01", at, time.Time{}, maxDelay))
	assert.Equal(t, time.Duration(8367899357), Jitter("depl_02", at, time.Time{}, maxDelay))
	assert.Equal(t, time.Duration(400472190), Jitter("depl_01", at.Add(time.Minute), time.Time{}, maxDelay))

	assert.Equal(t, Jitter("depl_01", at, time.Time{}, maxDelay), Jitter("depl_01", at, time.Time{}, maxDelay))
	santiago := time.FixedZone("-03", -3*60*60)
	assert.Equal(t, Jitter("depl_01", at, time.Time{}, maxDelay), Jitter("depl_01", at.In(santiago), time.Time{}, maxDelay),
		"the same instant in another zone is the same fire")
	assert.NotEqual(t, Jitter("depl_01", at, time.Time{}, maxDelay), Jitter("depl_01", at.Add(time.Nanosecond), time.Time{}, maxDelay))
}

func TestJitterSpreadsFiresOverTheWindow(t *testing.T) {
	at := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	const (
		maxDelay = 10 * time.Second
		samples  = 1000
	)
	tests := []struct {
		name string
		fire func(i int) (string, time.Time)
	}{
		{"many deployments on one minute", func(i int) (string, time.Time) { return fmt.Sprintf("depl_%04d", i), at }},
		{"one deployment over many minutes", func(i int) (string, time.Time) {
			return "depl_0001", at.Add(time.Duration(i) * time.Minute)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			distinct := map[time.Duration]bool{}
			var perSecond [10]int
			for i := range samples {
				id, scheduledAt := tt.fire(i)
				d := Jitter(id, scheduledAt, time.Time{}, maxDelay)
				distinct[d] = true
				perSecond[d/time.Second]++
			}
			assert.GreaterOrEqual(t, len(distinct), samples-5)
			// A uniform spread puts about 100 in each second (σ ≈ 9.5).
			for s, n := range perSecond {
				assert.InDelta(t, samples/10, n, 40, "second %d of the window holds %d fires", s, n)
			}
		})
	}
}
