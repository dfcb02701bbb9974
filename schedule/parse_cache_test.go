package schedule

import (
	"testing"
	"time"
)

// An accepted schedule is reused for an hour, and only an accepted one:
// a rejection is computed again, and an old acceptance is checked again.
func TestParseCacheReusesAcceptancesForAnHour(t *testing.T) {
	a, err := Parse("7 3 * * *", "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("7 3 * * *", "Europe/Berlin")
	if err != nil || b != a {
		t.Fatalf("second Parse = %p, %v; want the cached %p", b, err, a)
	}
	if c, err := Parse("7 3 * * *", "America/New_York"); err != nil || c == a {
		t.Fatalf("another zone must not share the entry (%v)", err)
	}
	if _, err := Parse("61 3 * * *", "UTC"); err == nil {
		t.Fatal("a bad minute was accepted")
	}
	if _, err := Parse("61 3 * * *", "UTC"); err == nil {
		t.Fatal("a bad minute was accepted the second time")
	}
	now := time.Now()
	if cachedParse("7 3 * * *", "Europe/Berlin", DSTOnce, now.Add(parseCacheTTL+time.Second)) != nil {
		t.Fatal("an acceptance older than the TTL was reused")
	}
	if cachedParse("7 3 * * *", "Europe/Berlin", DSTOnce, now.Add(-time.Hour)) != nil {
		t.Fatal("an acceptance from the future (clock stepped back) was reused")
	}
}
