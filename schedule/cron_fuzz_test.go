package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fuzzEpoch and fuzzSpan keep fuzzed start instants in years 1900-2200,
// where zone data is meaningful and every accepted schedule must fire.
var (
	fuzzEpoch = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	fuzzSpan  = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).Unix() - fuzzEpoch
)

// FuzzParse checks that Parse never panics, that every rejection is a
// well-formed *ValidationError, and that every accepted schedule behaves:
// Next is strictly after its argument, within the horizon, stable when asked
// again from just before, and successive fires increase. The seed corpus is
// in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add("0 9 * * 1-5", "America/New_York", int64(1764320400))
	f.Add("*/15 * * * *", "Australia/Lord_Howe", int64(1728142200))
	f.Add("30 2 * * *", "Europe/Berlin", int64(1711846800))
	f.Add("0 0 29 2 */7", "UTC", int64(3731443200))
	f.Add("@daily", "UTC", int64(0))
	f.Add("0 0 30 2 *", "Mars/Base", int64(-1))
	f.Fuzz(func(t *testing.T, expression, timezone string, afterSeconds int64) {
		cron, err := Parse(expression, timezone)
		if err != nil {
			var verr *ValidationError
			require.True(t, errors.As(err, &verr), "error %v is a %T", err, err)
			require.Contains(t, []string{"schedule.expression", "schedule.timezone"}, verr.Field)
			require.NotEmpty(t, verr.Message)
			require.Nil(t, cron)
			return
		}
		require.Equal(t, expression, cron.Expression())
		require.Len(t, splitCronFields(expression), 5)

		after := time.Unix(fuzzEpoch+int64(uint64(afterSeconds)%uint64(fuzzSpan)), 0)
		next := cron.Next(after)
		if next.IsZero() {
			// Only a wildcard schedule whose every wall time falls in DST
			// gaps can have no fire (see the package documentation).
			require.False(t, cron.Fixed(), "fixed schedule %q in %s has no fire after %s", expression, timezone, after)
			require.NotEqual(t, "UTC", cron.Location().String(), "%q has no fire in UTC after %s", expression, after)
			return
		}
		require.True(t, next.After(after), "Next(%s) = %s", after, next)
		require.LessOrEqual(t, next.Sub(after), time.Duration(searchHorizon)*time.Second)
		if local := next.In(cron.Location()); local.Second() != 0 {
			// Only a transition instant (a fixed schedule's gap fire after a
			// historic shift by seconds) may be off the zone's whole minutes.
			start, _ := local.ZoneBounds()
			require.True(t, start.Equal(next), "%q in %s fires at %s, off the minute", expression, timezone, local)
		}
		require.Equal(t, next, cron.Next(next.Add(-time.Second)), "asking again from just before gives the same fire")

		previous := next
		for _, fire := range cron.Upcoming(next, 3) {
			require.True(t, fire.After(previous), "Upcoming increases: %s then %s", previous, fire)
			previous = fire
		}
		require.False(t, strings.ContainsAny(expression, "\n\r"), "newlines are never accepted")
	})
}

// FuzzNextMatchesReference extends the differential test to fuzzed
// expressions and starts: whatever Parse accepts must fire exactly when the
// brute-force reference says, in one of the differential test's zones,
// under the DST policy that zoneIndex's top bit picks (set: literal).
func FuzzNextMatchesReference(f *testing.F) {
	f.Add("30 2 * * *", uint8(2), int64(7_689_600))
	f.Add("*/15 1-3 * * 0", uint8(1), int64(26_870_400))
	f.Add("0,30 0 * 4,9 */7", uint8(4), int64(8_208_000))
	f.Add("45 1-2/1 1-7 * 0", uint8(3), int64(24_278_400))
	f.Add("30 2 * * *", uint8(0x80|2), int64(7_689_600))
	f.Add("30 1 * * *", uint8(0x80|1), int64(26_870_400))
	f.Fuzz(func(t *testing.T, expression string, zoneIndex uint8, afterSeconds int64) {
		policy := DSTOnce
		if zoneIndex&0x80 != 0 {
			policy = DSTLiteral
		}
		loc, err := time.LoadLocation(diffZones[int(zoneIndex&0x7f)%len(diffZones)])
		require.NoError(t, err)
		cron, err := ParseWith(expression, loc.String(), policy)
		if err != nil {
			return
		}
		// gronx reads a day-of-week list led by a bare "*" with the wrong
		// day rule (see randomField); the reference cannot judge those.
		if fields := splitCronFields(expression); strings.HasPrefix(fields[cronDayOfWeek], "*,") {
			return
		}
		reference, err := newReferenceCron(strings.Join(splitCronFields(expression), " "), loc, policy)
		require.NoError(t, err)

		const horizon = 8 * 366 * 24 * time.Hour
		first := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		after := first.Add(time.Duration(uint64(afterSeconds)%uint64(7*365*24*3600)) * time.Second)
		for step := 0; step < 2; step++ {
			want := reference.next(after, horizon)
			got := cron.Next(after)
			if want.IsZero() {
				require.True(t, got.IsZero() || !got.Before(after.Add(horizon)),
					"Parse(%q, %q).Next(%s) = %s, reference finds nothing within %s", expression, loc, after, got, horizon)
				return
			}
			require.True(t, got.Equal(want), "Parse(%q, %q).Next(%s):\n got %s\nwant %s",
				expression, loc, describeInstant(after, loc), describeInstant(got, loc), describeInstant(want, loc))
			after = want
		}
	})
}
