package schedule

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNextIsStrictlyAfterAndOnTheMinute(t *testing.T) {
	cron := parseCronForTest(t, "*/5 * * * *", "UTC")
	tests := []struct {
		name  string
		after string
		want  string
	}{
		{"exactly on a fire time", "2026-11-28T09:00:00Z", "2026-11-28T09:05:00Z"},
		{"one second before", "2026-11-28T08:59:59Z", "2026-11-28T09:00:00Z"},
		{"between fires", "2026-11-28T09:02:30Z", "2026-11-28T09:05:00Z"},
		{"across midnight and year", "2026-12-31T23:58:00Z", "2027-01-01T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, utcInstant(t, tt.want), cron.Next(utcInstant(t, tt.after)))
		})
	}

	t.Run("sub-second part of after", func(t *testing.T) {
		onFire := utcInstant(t, "2026-11-28T09:00:00Z")
		assert.Equal(t, utcInstant(t, "2026-11-28T09:05:00Z"), cron.Next(onFire.Add(time.Nanosecond)))
		assert.Equal(t, onFire, cron.Next(onFire.Add(-time.Nanosecond)))
	})
	t.Run("after in another zone", func(t *testing.T) {
		tokyo, err := time.LoadLocation("Asia/Tokyo")
		require.NoError(t, err)
		got := cron.Next(utcInstant(t, "2026-11-28T09:02:00Z").In(tokyo))
		assert.Equal(t, utcInstant(t, "2026-11-28T09:05:00Z"), got)
		assert.Equal(t, time.UTC, got.Location())
	})
}

func TestNextFollowsTheScheduleZone(t *testing.T) {
	cron := parseCronForTest(t, "0 9 * * 1-5", "America/New_York")
	// Friday 2026-11-27 10:00 EST: next is Monday 09:00 EST.
	assert.Equal(t, utcInstant(t, "2026-11-30T14:00:00Z"), cron.Next(utcInstant(t, "2026-11-27T15:00:00Z")))

	kolkata := parseCronForTest(t, "30 9 * * *", "Asia/Kolkata")
	assert.Equal(t, utcInstant(t, "2026-11-28T04:00:00Z"), kolkata.Next(utcInstant(t, "2026-11-28T00:00:00Z")))

	chatham := parseCronForTest(t, "0 0 * * *", "Pacific/Chatham")
	// Chatham is +13:45 in November.
	assert.Equal(t, utcInstant(t, "2026-11-28T10:15:00Z"), chatham.Next(utcInstant(t, "2026-11-28T00:00:00Z")))
}

func TestNextCombinesDayFieldsLikeVixieCron(t *testing.T) {
	tests := []struct {
		name       string
		expression string
		after      string
		want       []string
	}{
		{"both restricted: the 13th or any Friday", "0 0 13 * 5", "2026-11-01T00:00:00Z",
			[]string{"2026-11-06T00:00:00Z", "2026-11-13T00:00:00Z", "2026-11-20T00:00:00Z", "2026-11-27T00:00:00Z", "2026-12-04T00:00:00Z"}},
		{"starred day-of-month: odd days that are Fridays", "0 0 */2 * 5", "2026-11-01T00:00:00Z",
			[]string{"2026-11-13T00:00:00Z", "2026-11-27T00:00:00Z", "2026-12-11T00:00:00Z"}},
		{"starred day-of-week: the 13th that is a Sunday, Tuesday, Thursday or Saturday", "0 0 13 * */2", "2026-11-01T00:00:00Z",
			[]string{"2026-12-13T00:00:00Z", "2027-02-13T00:00:00Z", "2027-03-13T00:00:00Z"}},
		{"day-of-week list led by a star is still a star", "0 0 13 * *,5", "2026-11-01T00:00:00Z",
			[]string{"2026-11-13T00:00:00Z", "2026-12-13T00:00:00Z"}},
		{"7 is Sunday", "0 12 * * 7", "2026-11-28T00:00:00Z",
			[]string{"2026-11-29T12:00:00Z", "2026-12-06T12:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cron := parseCronForTest(t, tt.expression, "UTC")
			want := make([]time.Time, len(tt.want))
			for i, text := range tt.want {
				want[i] = utcInstant(t, text)
			}
			assert.Equal(t, want, cron.Upcoming(utcInstant(t, tt.after), len(want)))
		})
	}
}

func TestNextFindsRareSchedules(t *testing.T) {
	tests := []struct {
		name       string
		expression string
		after      string
		want       string
	}{
		{"leap day", "0 0 29 2 *", "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z"},
		{"leap day across the non-leap 2100", "0 0 29 2 *", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z"},
		{"Sunday the 13th", "0 0 13 * */7", "2026-11-28T00:00:00Z", "2026-12-13T00:00:00Z"},
		{"leap day on a Sunday, 40 years apart", "0 0 29 2 */7", "2088-03-01T00:00:00Z", "2128-02-29T00:00:00Z"},
		{"last minute of the year", "59 23 31 12 *", "2026-01-01T00:00:00Z", "2026-12-31T23:59:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cron := parseCronForTest(t, tt.expression, "UTC")
			assert.Equal(t, utcInstant(t, tt.want), cron.Next(utcInstant(t, tt.after)))
		})
	}
}

func TestUpcomingReturnsSuccessiveFires(t *testing.T) {
	cron := parseCronForTest(t, "0 9 * * 1-5", "Europe/Berlin")
	after := utcInstant(t, "2026-11-26T12:00:00Z") // Thursday, 13:00 CET
	got := cron.Upcoming(after, 5)
	want := []time.Time{
		utcInstant(t, "2026-11-27T08:00:00Z"),
		utcInstant(t, "2026-11-30T08:00:00Z"),
		utcInstant(t, "2026-12-01T08:00:00Z"),
		utcInstant(t, "2026-12-02T08:00:00Z"),
		utcInstant(t, "2026-12-03T08:00:00Z"),
	}
	assert.Equal(t, want, got)
	for i, fire := range got {
		assert.Equal(t, cron.Next(after), fire, "Upcoming[%d] is Next of the previous fire", i)
		after = fire
	}

	assert.Empty(t, cron.Upcoming(after, 0))
	assert.Empty(t, cron.Upcoming(after, -3))
}

func TestNextHasNoFireOutsideTheSupportedRange(t *testing.T) {
	cron := parseCronForTest(t, "* * * * *", "UTC")
	assert.True(t, cron.Next(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero())
	assert.Empty(t, cron.Upcoming(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), 5))
	assert.Equal(t, time.Date(1, 1, 1, 0, 1, 0, 0, time.UTC), cron.Next(time.Time{}), "the zero Time is a valid start")
	assert.True(t, (&Cron{}).Next(time.Now()).IsZero(), "a zero Cron never fires instead of panicking")
}

// TestNextReturnsZeroWhenEveryWallTimeFallsInAGap documents the one way a
// schedule can have no fire: a wildcard schedule whose only wall times never
// exist in its zone. In New York the second Sunday of March has no 02:xx,
// and "*/7" in day-of-week makes the day fields AND-combined. Parse refuses
// it (see zone_fires_test.go); a stored one, compiled, has no next fire.
func TestNextReturnsZeroWhenEveryWallTimeFallsInAGap(t *testing.T) {
	cron, err := Compile("* 2 8-14 3 */7", "America/New_York")
	require.NoError(t, err)
	assert.True(t, cron.Next(utcInstant(t, "2026-01-01T00:00:00Z")).IsZero())

	fixed := parseCronForTest(t, "0 2 8-14 3 */7", "America/New_York")
	assert.Equal(t, utcInstant(t, "2026-03-08T07:00:00Z"), fixed.Next(utcInstant(t, "2026-01-01T00:00:00Z")),
		"the fixed version fires at the transition instead")
}

func TestCivilDateConversionsRoundTrip(t *testing.T) {
	for day := int64(-800000); day <= 800000; day += 997 {
		year, month, dayOfMonth := civilFromDays(day)
		require.Equal(t, day, daysFromCivil(year, month, dayOfMonth))
		date := time.Unix(day*secondsPerDay, 0).UTC()
		require.Equal(t, date.Year(), year)
		require.Equal(t, int(date.Month()), month)
		require.Equal(t, date.Day(), dayOfMonth)
		require.Equal(t, int(date.Weekday()), weekdayOfDay(day))
	}
}
