package schedule

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 12 point 13: wildcard schedules that only match inside a zone's
// spring-forward gap never fire and are refused, naming the zone.
func TestScheduleThatOnlyMatchesADSTGapIsRefused(t *testing.T) {
	never := []struct{ expression, timezone string }{
		{"* 2 8-14 3 */7", "America/New_York"},       // 02:xx on the second Sunday of March
		{"* 2 25-31 3 */7", "Europe/Berlin"},         // 02:xx on the last Sunday of March
		{"*/60 2 1-7 10 */7", "Australia/Lord_Howe"}, // 02:00 on the first Sunday of October (02:00-02:30 is skipped)
		{"*/15 2 8-14 3 */7", "America/Chicago"},
	}
	for _, tt := range never {
		t.Run(tt.timezone, func(t *testing.T) {
			_, err := Parse(tt.expression, tt.timezone)
			var verr *ValidationError
			require.ErrorAs(t, err, &verr)
			assert.Equal(t, "schedule.expression", verr.Field)
			assert.Contains(t, verr.Message, "never fires in \""+tt.timezone+"\"")
			assert.Contains(t, verr.Message, "daylight-saving gap")

			// The same expression fires elsewhere, and a stored schedule still
			// compiles (it shows no upcoming times rather than breaking reads).
			_, err = Parse(tt.expression, "UTC")
			require.NoError(t, err)
			c, err := Compile(tt.expression, tt.timezone)
			require.NoError(t, err)
			assert.Empty(t, c.Upcoming(time.Now(), 1))
		})
	}

	fires := []struct{ expression, timezone string }{
		// Fixed minute and hour: fires once at the transition instant.
		{"0-29 2 1-7 10 */7", "Australia/Lord_Howe"},
		{"30 2 8-14 3 */7", "America/New_York"},
		// Part of the hour survives the 30-minute Lord Howe gap.
		{"* 2 1-7 10 */7", "Australia/Lord_Howe"},
		// The OR rule: any 8th-14th of March, not only the Sunday.
		{"* 2 8-14 3 0", "America/New_York"},
		{"* 2 8-14 3 */7", "Asia/Tokyo"},
		{"* 2 29 2 */7", "America/New_York"},
	}
	for _, tt := range fires {
		c, err := Parse(tt.expression, tt.timezone)
		require.NoError(t, err, "%s in %s", tt.expression, tt.timezone)
		assert.NotEmpty(t, c.Upcoming(time.Now(), 1), "%s in %s", tt.expression, tt.timezone)
	}
}

// firesInZone agrees with Next over every zone for a schedule that matches
// the gap hours of many zones.
func TestFiresInZoneAgreesWithNext(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, expr := range []string{"* 2 8-14 3 */7", "* 2 25-31 3 */7", "* 0 1-7 4 */7", "*/30 2 * 3 */7"} {
		for _, tz := range []string{"America/New_York", "Europe/Berlin", "America/Havana", "America/Santiago",
			"Asia/Beirut", "Pacific/Chatham", "Australia/Lord_Howe", "America/Asuncion", "UTC"} {
			c, err := Compile(expr, tz)
			require.NoError(t, err)
			assert.Equal(t, !c.Next(from).IsZero(), c.firesInZone(from.Unix()), "%s in %s", expr, tz)
		}
	}
}

// Go's ZoneBounds ends the last period of a leap year at December 31
// 00:00 UTC when the zone follows its TZ rule; fire times on that day must
// not suffer from it.
func TestFireTimesOnDecember31OfALeapYear(t *testing.T) {
	c, err := Parse("30 2 * * *", "America/New_York")
	require.NoError(t, err)
	after := time.Date(2024, 12, 31, 4, 59, 59, 0, time.UTC)
	assert.Equal(t, time.Date(2024, 12, 31, 7, 30, 0, 0, time.UTC), c.Next(after))
	for instant := time.Date(2024, 12, 30, 0, 0, 0, 0, time.UTC); instant.Before(time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)); instant = instant.Add(time.Hour) {
		p := zonePeriodAt(c.Location(), instant.Unix())
		require.True(t, p.start <= instant.Unix() && instant.Unix() < p.end, "period of %s is [%d, %d)", instant, p.start, p.end)
	}
	assert.False(t, strings.Contains(c.Location().String(), "Local"))
}

func BenchmarkNeverFiresCheck(b *testing.B) {
	c, err := Compile("* 2 8-14 3 */7", "America/New_York")
	require.NoError(b, err)
	from := time.Now().Unix()
	b.Run("never_fires", func(b *testing.B) {
		for b.Loop() {
			if c.firesInZone(from) {
				b.Fatal("fires")
			}
		}
	})
	daily, err := Compile("*/5 * * * *", "America/New_York")
	require.NoError(b, err)
	b.Run("fires", func(b *testing.B) {
		for b.Loop() {
			if !daily.firesInZone(from) {
				b.Fatal("never")
			}
		}
	})
	// The minute walk this replaces: Next over its century horizon.
	b.Run("minute_walk_next", func(b *testing.B) {
		for b.Loop() {
			if !c.Next(time.Unix(from, 0)).IsZero() {
				b.Fatal("fires")
			}
		}
	})
}
