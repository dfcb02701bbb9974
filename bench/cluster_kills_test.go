package main

import (
	"math/rand/v2"
	"testing"
	"time"
)

// nextKill lands in the window of the kind it names, never in the past,
// and balances the kinds: over many picks each window gets kills.
func TestNextKillAimsAtItsWindowAndBalancesKinds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	windows := map[string]killWindow{}
	for _, w := range killWindows {
		windows[w.kind] = w
	}
	counts := map[string]int{}
	now := time.Date(2026, 3, 1, 12, 0, 7, 0, time.UTC)
	for range 300 {
		at, kind := nextKill(rng, now, counts)
		if !at.After(now) {
			t.Fatalf("kill at %s is not after now %s", at, now)
		}
		w, ok := windows[kind]
		if !ok {
			t.Fatalf("unknown kind %q", kind)
		}
		_, off := nearestBoundary(at)
		if w.kind == "mid-minute" {
			off = at.Sub(at.Truncate(time.Minute))
		}
		if off < w.from || off > w.to {
			t.Fatalf("%s kill at offset %s, outside [%s, %s]", kind, off, w.from, w.to)
		}
		counts[kind]++
		now = at.Add(4 * time.Second) // the failover before the next kill
	}
	for _, w := range killWindows {
		if counts[w.kind] < 50 {
			t.Errorf("%s: %d of 300 kills (counts %v)", w.kind, counts[w.kind], counts)
		}
	}
}
