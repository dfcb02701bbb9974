package schedule

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sandbox0/sandbox0d/schedule/tzdb"
)

// The per-zone period cache answers with a period computed from another
// instant. Whatever the order of lookups, the answer must contain the
// instant and carry the offset a fresh computation gives; nothing else of a
// period is relied on.
func TestZonePeriodCacheAgreesWithAFreshComputation(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	lo := time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(2060, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	lookups := 20000
	if raceEnabled {
		lookups = 4000
	}
	for _, name := range diffZones {
		loc, err := tzdb.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		for range lookups / len(diffZones) {
			// Mostly near the previous lookups (as Next walks), sometimes anywhere.
			instant := lo + rng.Int64N(hi-lo)
			if rng.IntN(3) != 0 {
				instant = time.Date(2024+rng.IntN(3), 12, 30, 0, 0, 0, 0, time.UTC).Unix() + rng.Int64N(3*secondsPerDay)
			}
			got, fresh := zonePeriodAt(loc, instant), computeZonePeriod(loc, instant)
			if got.offset != fresh.offset || instant < got.start || instant >= got.end {
				t.Fatalf("%s at %s: cached period %+v, fresh %+v", name, time.Unix(instant, 0).UTC(), got, fresh)
			}
		}
	}
}
