package cli

import (
	"fmt"
	"time"
)

// relativeTime renders t against now the way a person reads it at a glance:
// "in 3h12m", "5m ago", "now". The distance is rounded to the second first
// (sub-second jitter must not turn "10m" into "9m59s"), then shown with two
// units at most, rounded down.
func relativeTime(t, now time.Time) string {
	d := t.Sub(now).Round(time.Second)
	switch {
	case d > -time.Second && d < time.Second:
		return "now"
	case d > 0:
		return "in " + compactDuration(d)
	default:
		return compactDuration(-d) + " ago"
	}
}

var durationUnits = []struct {
	size   time.Duration
	suffix string
}{
	{24 * time.Hour, "d"},
	{time.Hour, "h"},
	{time.Minute, "m"},
	{time.Second, "s"},
}

// compactDuration renders d (non-negative) with its largest unit and, when
// non-zero, the next one: "45s", "12m30s", "3h12m", "2d4h", "5m".
func compactDuration(d time.Duration) string {
	for i, unit := range durationUnits {
		if d < unit.size {
			continue
		}
		out := fmt.Sprintf("%d%s", d/unit.size, unit.suffix)
		if i+1 < len(durationUnits) {
			next := durationUnits[i+1]
			if minor := (d % unit.size) / next.size; minor > 0 {
				out += fmt.Sprintf("%d%s", minor, next.suffix)
			}
		}
		return out
	}
	return "0s"
}

// zonedTime renders an instant on a zone's wall clock with the zone's
// abbreviation: "2026-11-30 09:00 CET".
func zonedTime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("2006-01-02 15:04 MST")
}

// utcStamp renders an instant as the API does: "2026-11-30T08:00:00Z".
func utcStamp(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// utcShort is the compact UTC form used in tables and blocks.
func utcShort(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// zonedAndUTC renders an instant in a zone and in UTC:
// "2026-11-30 09:00 CET (2026-11-30T08:00:00Z)".
func zonedAndUTC(t time.Time, loc *time.Location) string {
	return zonedTime(t, loc) + " (" + utcStamp(t) + ")"
}
