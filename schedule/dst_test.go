package schedule

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func parseCronForTest(t testing.TB, expression, timezone string) *Cron {
	t.Helper()
	cron, err := Parse(expression, timezone)
	require.NoError(t, err, "Parse(%q, %q)", expression, timezone)
	return cron
}

// utcInstant parses an RFC 3339 instant written in UTC ("2024-03-10T07:00Z"
// style with seconds omitted is not accepted: write them).
func utcInstant(t testing.TB, text string) time.Time {
	t.Helper()
	instant, err := time.Parse(time.RFC3339, text)
	require.NoError(t, err)
	return instant
}

type dstCase struct {
	name       string
	expression string
	after      string
	want       []string // successive fires after `after`, UTC
}

func runDSTCases(t *testing.T, timezone string, cases []dstCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name+" "+tc.expression, func(t *testing.T) {
			cron := parseCronForTest(t, tc.expression, timezone)
			got := cron.Upcoming(utcInstant(t, tc.after), len(tc.want))
			gotText := make([]string, len(got))
			for i, instant := range got {
				require.Equal(t, time.UTC, instant.Location(), "Next returns UTC")
				gotText[i] = instant.Format(time.RFC3339)
			}
			assert.Equal(t, tc.want, gotText, "in %s", timezone)
		})
	}
}

// New York: 2024-03-10 02:00 EST jumps to 03:00 EDT at 07:00Z; 2024-11-03
// 02:00 EDT falls back to 01:00 EST at 06:00Z, so 01:00-01:59 happens twice
// (05:xxZ in EDT, then 06:xxZ in EST).
func TestNextAcrossNewYorkTransitions(t *testing.T) {
	runDSTCases(t, "America/New_York", []dstCase{
		{"spring gap fires at the transition", "30 2 * * *", "2024-03-09T12:00:00Z",
			[]string{"2024-03-10T07:00:00Z", "2024-03-11T06:30:00Z"}},
		{"spring gap start fires at the transition", "0 2 * * *", "2024-03-09T12:00:00Z",
			[]string{"2024-03-10T07:00:00Z", "2024-03-11T06:00:00Z"}},
		{"spring before the gap", "30 1 * * *", "2024-03-09T12:00:00Z",
			[]string{"2024-03-10T06:30:00Z", "2024-03-11T05:30:00Z"}},
		{"spring gap times collapse into one fire", "0,30 2,3 * * *", "2024-03-10T06:00:00Z",
			[]string{"2024-03-10T07:00:00Z", "2024-03-10T07:30:00Z", "2024-03-11T06:00:00Z"}},
		{"spring wildcard skips the gap", "*/15 * * * *", "2024-03-10T06:30:00Z",
			[]string{"2024-03-10T06:45:00Z", "2024-03-10T07:00:00Z", "2024-03-10T07:15:00Z"}},
		{"spring hourly skips 02:30", "30 * * * *", "2024-03-10T05:00:00Z",
			[]string{"2024-03-10T05:30:00Z", "2024-03-10T06:30:00Z", "2024-03-10T07:30:00Z"}},
		{"spring wildcard hour skips the gap", "*/20 2 * * *", "2024-03-09T12:00:00Z",
			[]string{"2024-03-11T06:00:00Z", "2024-03-11T06:20:00Z"}},

		{"fall repeat fires at the first occurrence", "30 1 * * *", "2024-11-02T12:00:00Z",
			[]string{"2024-11-03T05:30:00Z", "2024-11-04T06:30:00Z"}},
		{"fall restart inside the repeat does not fire again", "30 1 * * *", "2024-11-03T06:10:00Z",
			[]string{"2024-11-04T06:30:00Z"}},
		{"fall after the repeat", "30 2 * * *", "2024-11-02T12:00:00Z",
			[]string{"2024-11-03T07:30:00Z", "2024-11-04T07:30:00Z"}},
		{"fall 02:00 exists once", "0 2 * * *", "2024-11-02T12:00:00Z",
			[]string{"2024-11-03T07:00:00Z", "2024-11-04T07:00:00Z"}},
		{"fall fixed minutes in the repeated hour", "0-59/20 1 * * *", "2024-11-03T04:00:00Z",
			[]string{"2024-11-03T05:00:00Z", "2024-11-03T05:20:00Z", "2024-11-03T05:40:00Z", "2024-11-04T06:00:00Z"}},
		{"fall wildcard minutes fire in both passes", "*/20 1 * * *", "2024-11-03T04:00:00Z",
			[]string{"2024-11-03T05:00:00Z", "2024-11-03T05:20:00Z", "2024-11-03T05:40:00Z",
				"2024-11-03T06:00:00Z", "2024-11-03T06:20:00Z", "2024-11-03T06:40:00Z", "2024-11-04T06:00:00Z"}},
		{"fall wildcard every 15 minutes", "*/15 * * * *", "2024-11-03T05:30:00Z",
			[]string{"2024-11-03T05:45:00Z", "2024-11-03T06:00:00Z", "2024-11-03T06:15:00Z",
				"2024-11-03T06:30:00Z", "2024-11-03T06:45:00Z", "2024-11-03T07:00:00Z"}},
		{"fall hourly fires in both passes", "30 * * * *", "2024-11-03T04:00:00Z",
			[]string{"2024-11-03T04:30:00Z", "2024-11-03T05:30:00Z", "2024-11-03T06:30:00Z", "2024-11-03T07:30:00Z"}},
		{"fall wildcard from inside the second pass", "*/15 * * * *", "2024-11-03T06:05:00Z",
			[]string{"2024-11-03T06:15:00Z", "2024-11-03T06:30:00Z"}},
		{"fall hourly just after the first 01:00 finds the second", "0 * * * *", "2024-11-03T05:00:01Z",
			[]string{"2024-11-03T06:00:00Z", "2024-11-03T07:00:00Z"}},
		{"fall hourly in the last minute before the repeat", "0 * * * *", "2024-11-03T05:59:00Z",
			[]string{"2024-11-03T06:00:00Z", "2024-11-03T07:00:00Z"}},
		{"fall fixed 01:00 just after its first occurrence waits a day", "0 1 * * *", "2024-11-03T05:00:01Z",
			[]string{"2024-11-04T06:00:00Z"}},
	})
}

// Berlin: 2024-03-31 02:00 CET jumps to 03:00 CEST at 01:00Z; 2024-10-27
// 03:00 CEST falls back to 02:00 CET at 01:00Z, so 02:00-02:59 happens twice
// (00:xxZ in CEST, then 01:xxZ in CET).
func TestNextAcrossBerlinTransitions(t *testing.T) {
	runDSTCases(t, "Europe/Berlin", []dstCase{
		{"spring gap fires at the transition", "30 2 * * *", "2024-03-30T12:00:00Z",
			[]string{"2024-03-31T01:00:00Z", "2024-04-01T00:30:00Z"}},
		{"spring gap start fires at the transition", "0 2 * * *", "2024-03-30T12:00:00Z",
			[]string{"2024-03-31T01:00:00Z", "2024-04-01T00:00:00Z"}},
		{"spring before the gap", "30 1 * * *", "2024-03-30T12:00:00Z",
			[]string{"2024-03-31T00:30:00Z", "2024-03-31T23:30:00Z"}},
		{"spring wildcard skips the gap", "*/15 * * * *", "2024-03-31T00:30:00Z",
			[]string{"2024-03-31T00:45:00Z", "2024-03-31T01:00:00Z", "2024-03-31T01:15:00Z"}},
		{"spring hourly skips 02:30", "30 * * * *", "2024-03-30T23:00:00Z",
			[]string{"2024-03-30T23:30:00Z", "2024-03-31T00:30:00Z", "2024-03-31T01:30:00Z"}},

		{"fall repeat fires at the first occurrence", "30 2 * * *", "2024-10-26T12:00:00Z",
			[]string{"2024-10-27T00:30:00Z", "2024-10-28T01:30:00Z"}},
		{"fall repeat start fires at the first occurrence", "0 2 * * *", "2024-10-26T12:00:00Z",
			[]string{"2024-10-27T00:00:00Z", "2024-10-28T01:00:00Z"}},
		{"fall before the repeat", "30 1 * * *", "2024-10-26T12:00:00Z",
			[]string{"2024-10-26T23:30:00Z", "2024-10-28T00:30:00Z"}},
		{"fall wildcard every 15 minutes", "*/15 * * * *", "2024-10-27T00:30:00Z",
			[]string{"2024-10-27T00:45:00Z", "2024-10-27T01:00:00Z", "2024-10-27T01:15:00Z"}},
		{"fall hourly fires in both passes", "30 * * * *", "2024-10-26T23:00:00Z",
			[]string{"2024-10-26T23:30:00Z", "2024-10-27T00:30:00Z", "2024-10-27T01:30:00Z", "2024-10-27T02:30:00Z"}},
	})
}

// Santiago changes clocks at midnight: 2024-09-07 24:00 -04 jumps to
// 2024-09-08 01:00 -03 at 04:00Z (00:00-00:59 on the 8th never happen), and
// 2024-04-07 00:00 -03 falls back to 2024-04-06 23:00 -04 at 03:00Z (23:xx on
// the 6th happens twice: 02:xxZ, then 03:xxZ).
func TestNextAcrossSantiagoMidnightTransitions(t *testing.T) {
	runDSTCases(t, "America/Santiago", []dstCase{
		{"midnight in the gap fires at the transition", "0 0 * * *", "2024-09-07T12:00:00Z",
			[]string{"2024-09-08T04:00:00Z", "2024-09-09T03:00:00Z"}},
		{"half past midnight in the gap", "30 0 * * *", "2024-09-07T12:00:00Z",
			[]string{"2024-09-08T04:00:00Z", "2024-09-09T03:30:00Z"}},
		{"wildcard skips the gap", "*/15 * * * *", "2024-09-08T03:30:00Z",
			[]string{"2024-09-08T03:45:00Z", "2024-09-08T04:00:00Z", "2024-09-08T04:15:00Z"}},
		{"hourly skips midnight", "0 * * * *", "2024-09-08T02:30:00Z",
			[]string{"2024-09-08T03:00:00Z", "2024-09-08T04:00:00Z", "2024-09-08T05:00:00Z"}},

		{"repeated 23:30 fires at the first occurrence", "30 23 * * *", "2024-04-06T12:00:00Z",
			[]string{"2024-04-07T02:30:00Z", "2024-04-08T03:30:00Z"}},
		{"midnight after the repeat", "0 0 * * *", "2024-04-06T12:00:00Z",
			[]string{"2024-04-07T04:00:00Z", "2024-04-08T04:00:00Z"}},
		{"wildcard fires in both passes", "*/30 * * * *", "2024-04-07T02:00:00Z",
			[]string{"2024-04-07T02:30:00Z", "2024-04-07T03:00:00Z", "2024-04-07T03:30:00Z", "2024-04-07T04:00:00Z"}},
	})
}

// Lord Howe shifts by 30 minutes: 2024-10-06 02:00 +10:30 jumps to 02:30
// +11:00 at 15:30Z on the 5th; 2024-04-07 02:00 +11:00 falls back to 01:30
// +10:30 at 15:00Z on the 6th (01:30-01:59 twice: 14:xxZ, then 15:xxZ).
func TestNextAcrossLordHoweHalfHourTransitions(t *testing.T) {
	runDSTCases(t, "Australia/Lord_Howe", []dstCase{
		{"gap start fires at the transition", "0 2 * * *", "2024-10-05T12:00:00Z",
			[]string{"2024-10-05T15:30:00Z", "2024-10-06T15:00:00Z"}},
		{"inside the gap fires at the transition", "15 2 * * *", "2024-10-05T12:00:00Z",
			[]string{"2024-10-05T15:30:00Z", "2024-10-06T15:15:00Z"}},
		{"gap end exists", "30 2 * * *", "2024-10-05T12:00:00Z",
			[]string{"2024-10-05T15:30:00Z", "2024-10-06T15:30:00Z"}},
		{"gap times collapse with the gap end", "0,10,20,30 2 * * *", "2024-10-05T12:00:00Z",
			[]string{"2024-10-05T15:30:00Z", "2024-10-06T15:00:00Z"}},
		{"wildcard skips the half-hour gap", "*/15 * * * *", "2024-10-05T15:00:00Z",
			[]string{"2024-10-05T15:15:00Z", "2024-10-05T15:30:00Z", "2024-10-05T15:45:00Z"}},
		{"wildcard minutes keep the real half hour", "*/10 2 * * *", "2024-10-05T12:00:00Z",
			[]string{"2024-10-05T15:30:00Z", "2024-10-05T15:40:00Z", "2024-10-05T15:50:00Z", "2024-10-06T15:00:00Z"}},

		{"repeated half hour fires at the first occurrence", "30 1 * * *", "2024-04-06T12:00:00Z",
			[]string{"2024-04-06T14:30:00Z", "2024-04-07T15:00:00Z"}},
		{"repeated 01:45 fires at the first occurrence", "45 1 * * *", "2024-04-06T12:00:00Z",
			[]string{"2024-04-06T14:45:00Z", "2024-04-07T15:15:00Z"}},
		{"02:00 after the repeat", "0 2 * * *", "2024-04-06T12:00:00Z",
			[]string{"2024-04-06T15:30:00Z", "2024-04-07T15:30:00Z"}},
		{"wildcard fires in both passes", "*/15 * * * *", "2024-04-06T14:20:00Z",
			[]string{"2024-04-06T14:30:00Z", "2024-04-06T14:45:00Z", "2024-04-06T15:00:00Z", "2024-04-06T15:15:00Z", "2024-04-06T15:30:00Z"}},
	})
}

// Havana and Beirut also change at midnight; Beirut falls back from 00:00
// +03 to 23:00 +02 on the previous day.
func TestNextAcrossOtherMidnightTransitions(t *testing.T) {
	runDSTCases(t, "America/Havana", []dstCase{
		{"midnight in the gap fires at the transition", "0 0 * * *", "2024-03-09T12:00:00Z",
			[]string{"2024-03-10T05:00:00Z", "2024-03-11T04:00:00Z"}},
		{"repeated 00:30 fires at the first occurrence", "30 0 * * *", "2024-11-02T12:00:00Z",
			[]string{"2024-11-03T04:30:00Z", "2024-11-04T05:30:00Z"}},
	})
	runDSTCases(t, "Asia/Beirut", []dstCase{
		{"midnight in the gap fires at the transition", "0 0 * * *", "2024-03-30T12:00:00Z",
			[]string{"2024-03-30T22:00:00Z", "2024-03-31T21:00:00Z"}},
		{"repeated 23:30 fires at the first occurrence", "30 23 * * *", "2024-10-26T12:00:00Z",
			[]string{"2024-10-26T20:30:00Z", "2024-10-27T21:30:00Z"}},
	})
}

// TestFixedScheduleFiresOnceEveryLocalDay is the user-visible promise of
// the fixed-time policy: a daily schedule runs exactly once on every local
// date of a year with two transitions, whether its time is skipped or
// repeated on those days.
func TestFixedScheduleFiresOnceEveryLocalDay(t *testing.T) {
	tests := []struct{ expression, timezone string }{
		{"30 2 * * *", "America/New_York"},
		{"30 2 * * *", "Europe/Berlin"},
		{"30 1 * * *", "America/New_York"},
		{"15 2 * * *", "Australia/Lord_Howe"},
		{"45 1 * * *", "Australia/Lord_Howe"},
		{"0 0 * * *", "America/Santiago"},
		{"30 23 * * *", "America/Santiago"},
		{"0 0 * * *", "America/Havana"},
		{"0 0 * * *", "Asia/Beirut"},
		{"30 2 * * *", "Pacific/Chatham"},
		{"15 3 * * *", "Pacific/Chatham"},
	}
	for _, tt := range tests {
		t.Run(tt.timezone+" "+tt.expression, func(t *testing.T) {
			cron := parseCronForTest(t, tt.expression, tt.timezone)
			loc := cron.Location()
			start := time.Date(2025, 1, 1, 0, 0, 0, 0, loc).Add(-time.Second)
			fires := cron.Upcoming(start, 365)
			require.Len(t, fires, 365)

			perDate := map[string]int{}
			for _, fire := range fires {
				perDate[fire.In(loc).Format(time.DateOnly)]++
			}
			for day := time.Date(2025, 1, 1, 12, 0, 0, 0, loc); day.Year() == 2025; day = day.AddDate(0, 0, 1) {
				date := day.Format(time.DateOnly)
				assert.Equal(t, 1, perDate[date], "fires on local date %s", date)
			}
		})
	}
}
