package schedule

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// upcomingText returns n fires after `after` (UTC, RFC 3339) under policy.
func upcomingText(t *testing.T, expression, timezone string, policy DSTPolicy, after string, n int) []string {
	t.Helper()
	cron, err := ParseWith(expression, timezone, policy)
	require.NoError(t, err, "ParseWith(%q, %q, %s)", expression, timezone, policy)
	require.Equal(t, policy, cron.Policy())
	var out []string
	for _, fire := range cron.Upcoming(utcInstant(t, after), n) {
		out = append(out, fire.Format(time.RFC3339))
	}
	return out
}

// The hosted API's scheduled-deployments page example: a daily 02:30
// schedule in a US zone. New York 2024: 03-10 02:00 EST jumps to 03:00 EDT
// at 07:00Z; 11-03 02:00 EDT falls back to 01:00 EST at 06:00Z.
func TestDSTPoliciesOnTheOfficialExample(t *testing.T) {
	const zone = "America/New_York"
	// Spring forward: 02:30 does not exist on 03-10.
	assert.Equal(t, []string{"2024-03-09T07:30:00Z", "2024-03-10T07:00:00Z", "2024-03-11T06:30:00Z"},
		upcomingText(t, "30 2 * * *", zone, DSTOnce, "2024-03-09T00:00:00Z", 3), "once: fires at the transition")
	assert.Equal(t, []string{"2024-03-09T07:30:00Z", "2024-03-11T06:30:00Z"},
		upcomingText(t, "30 2 * * *", zone, DSTLiteral, "2024-03-09T00:00:00Z", 2), "literal: not triggered on 03-10")

	// Fall back: 01:30 happens at 05:30Z (EDT) and again at 06:30Z (EST).
	assert.Equal(t, []string{"2024-11-02T05:30:00Z", "2024-11-03T05:30:00Z", "2024-11-04T06:30:00Z"},
		upcomingText(t, "30 1 * * *", zone, DSTOnce, "2024-11-02T00:00:00Z", 3), "once: first occurrence only")
	assert.Equal(t, []string{"2024-11-02T05:30:00Z", "2024-11-03T05:30:00Z", "2024-11-03T06:30:00Z", "2024-11-04T06:30:00Z"},
		upcomingText(t, "30 1 * * *", zone, DSTLiteral, "2024-11-02T00:00:00Z", 4), "literal: both occurrences")

	// Restarting exactly on the first occurrence (what the scheduler does
	// after a fire: Next from the nominal instant) finds the second.
	assert.Equal(t, []string{"2024-11-03T06:30:00Z"},
		upcomingText(t, "30 1 * * *", zone, DSTLiteral, "2024-11-03T05:30:00Z", 1))
	assert.Equal(t, []string{"2024-11-04T06:30:00Z"},
		upcomingText(t, "30 1 * * *", zone, DSTOnce, "2024-11-03T05:30:00Z", 1))
}

// Wildcard schedules follow the real clock under both policies, so the
// policy changes nothing for them.
func TestDSTPoliciesAgreeOnWildcardSchedules(t *testing.T) {
	for _, expression := range []string{"*/15 * * * *", "30 * * * *", "*/20 1 * * *", "0 */2 * * *"} {
		for _, after := range []string{"2024-03-10T05:00:00Z", "2024-11-03T04:00:00Z"} {
			assert.Equal(t,
				upcomingText(t, expression, "America/New_York", DSTOnce, after, 8),
				upcomingText(t, expression, "America/New_York", DSTLiteral, after, 8), "%s after %s", expression, after)
		}
	}
}

// Under literal a daily schedule fires on every local date except the
// spring-forward day when its time is skipped, and twice on the fall-back
// day when its time is repeated: 365 - 1 and 365 + 1 fires in 2025.
func TestLiteralDailyScheduleSkipsAndRepeats(t *testing.T) {
	tests := []struct {
		expression, timezone string
		skipped, doubled     string
	}{
		{"30 2 * * *", "America/New_York", "2025-03-09", ""},
		{"30 1 * * *", "America/New_York", "", "2025-11-02"},
		{"30 2 * * *", "Europe/Berlin", "2025-03-30", "2025-10-26"},
		{"0 0 * * *", "America/Santiago", "2025-09-07", ""},
		{"30 23 * * *", "America/Santiago", "", "2025-04-05"},
		{"15 2 * * *", "Australia/Lord_Howe", "2025-10-05", ""},
		{"45 1 * * *", "Australia/Lord_Howe", "", "2025-04-06"},
	}
	for _, tt := range tests {
		t.Run(tt.timezone+" "+tt.expression, func(t *testing.T) {
			cron, err := ParseWith(tt.expression, tt.timezone, DSTLiteral)
			require.NoError(t, err)
			loc := cron.Location()
			start := time.Date(2025, 1, 1, 0, 0, 0, 0, loc).Add(-time.Second)
			end := time.Date(2026, 1, 1, 0, 0, 0, 0, loc)
			perDate := map[string]int{}
			for fire := cron.Next(start); fire.Before(end); fire = cron.Next(fire) {
				perDate[fire.In(loc).Format(time.DateOnly)]++
			}
			for day := time.Date(2025, 1, 1, 12, 0, 0, 0, loc); day.Year() == 2025; day = day.AddDate(0, 0, 1) {
				date := day.Format(time.DateOnly)
				want := 1
				switch date {
				case tt.skipped:
					want = 0
				case tt.doubled:
					want = 2
				}
				assert.Equal(t, want, perDate[date], "fires on local date %s", date)
			}
		})
	}
}

// The never-fires check follows the policy: a fixed-time schedule whose
// only matches are skipped wall times fires at the transition under once,
// never under literal, where it is refused naming the key to change.
func TestNeverFiresCheckFollowsThePolicy(t *testing.T) {
	for _, tt := range []struct{ expression, timezone string }{
		{"30 2 25-31 3 */7", "Europe/Berlin"},        // 02:30 on the last Sunday of March
		{"30 2 8-14 3 */7", "America/New_York"},      // 02:30 on the second Sunday of March
		{"0-29 2 1-7 10 */7", "Australia/Lord_Howe"}, // 02:00-02:29 on the first Sunday of October
	} {
		t.Run(tt.timezone, func(t *testing.T) {
			once, err := ParseWith(tt.expression, tt.timezone, DSTOnce)
			require.NoError(t, err)
			assert.NotEmpty(t, once.Upcoming(time.Now(), 1))

			_, err = ParseWith(tt.expression, tt.timezone, DSTLiteral)
			var verr *ValidationError
			require.ErrorAs(t, err, &verr)
			assert.Equal(t, "schedule.expression", verr.Field)
			assert.Contains(t, verr.Message, "never fires in \""+tt.timezone+"\"")
			assert.Contains(t, verr.Message, "schedule.dst_policy literal")
			assert.Contains(t, verr.Message, "schedule.dst_policy once")

			// Stored under once and loaded under literal, it compiles and
			// simply has no fire time; the check agrees with Next.
			c, err := CompileWith(tt.expression, tt.timezone, DSTLiteral)
			require.NoError(t, err)
			now := time.Now()
			assert.Empty(t, c.Upcoming(now, 1))
			assert.False(t, c.firesInZone(now.Unix()))
		})
	}
	// Minutes outside a 30-minute gap survive under literal.
	_, err := ParseWith("0-45 2 1-7 10 */7", "Australia/Lord_Howe", DSTLiteral)
	require.NoError(t, err)
}

// A schedule parsed under one policy is never handed out by the parse cache
// for the other.
func TestParseCacheKeepsPoliciesApart(t *testing.T) {
	once, err := ParseWith("30 2 * * *", "America/Denver", DSTOnce)
	require.NoError(t, err)
	literal, err := ParseWith("30 2 * * *", "America/Denver", DSTLiteral)
	require.NoError(t, err)
	require.NotSame(t, once, literal)
	assert.Equal(t, DSTOnce, once.Policy())
	assert.Equal(t, DSTLiteral, literal.Policy())
	again, err := Parse("30 2 * * *", "America/Denver")
	require.NoError(t, err)
	assert.Same(t, once, again)
}

func TestParseDSTPolicy(t *testing.T) {
	for _, name := range DSTPolicyNames {
		p, err := ParseDSTPolicy(name)
		require.NoError(t, err)
		assert.Equal(t, name, p.String())
	}
	for _, bad := range []string{"", "Once", "LITERAL", "twice", "skip"} {
		_, err := ParseDSTPolicy(bad)
		require.Error(t, err, "%q", bad)
		assert.Contains(t, err.Error(), `"once"`)
		assert.Contains(t, err.Error(), `"literal"`)
	}
}
