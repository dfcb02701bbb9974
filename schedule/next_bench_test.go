package schedule

import (
	"testing"
	"time"
)

// benchStarts spreads the `after` arguments over a year so the numbers
// include zone lookups in both DST and standard time, not one cached period.
func benchStarts() []time.Time {
	starts := make([]time.Time, 1024)
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range starts {
		// 8h33m17s apart: co-prime with minutes, hours and days.
		starts[i] = first.Add(time.Duration(i) * (8*time.Hour + 33*time.Minute + 17*time.Second))
	}
	return starts
}

var benchNextCases = []struct {
	name, expression, timezone string
}{
	{"every-5-minutes", "*/5 * * * *", "America/New_York"},
	{"weekdays-at-9", "0 9 * * 1-5", "America/New_York"},
	{"leap-day", "0 0 29 2 *", "America/New_York"},
	{"13th-or-friday", "0 0 13 * 5", "America/New_York"},
	{"every-5-minutes-utc", "*/5 * * * *", "UTC"},
	{"daily-0230-berlin", "30 2 * * *", "Europe/Berlin"},
}

// benchSink keeps results alive so the compiler cannot drop the calls.
var benchSink time.Time

// BenchmarkNext measures Cron.Next on common and rare expressions under
// each DST policy (the side-by-side with robfig/cron is in bench/compare).
func BenchmarkNext(b *testing.B) {
	starts := benchStarts()
	for _, bc := range benchNextCases {
		for _, policy := range diffPolicies {
			b.Run(bc.name+"/sandbox0d/"+policy.String(), func(b *testing.B) {
				cron := parseCronWithPolicyForTest(b, bc.expression, bc.timezone, policy)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					benchSink = cron.Next(starts[i%len(starts)])
					i++
				}
			})
		}
	}
}

// BenchmarkNextNearTransition measures the slow path: wall times within a
// day of a DST transition are mapped through zone lookups. The fixed-time
// case is where the policies take different branches (first occurrence
// only, or both).
func BenchmarkNextNearTransition(b *testing.B) {
	first := time.Date(2026, 11, 1, 4, 0, 0, 0, time.UTC)
	for _, expression := range []string{"*/5 * * * *", "30 1 * * *"} {
		for _, policy := range diffPolicies {
			b.Run(expression+"/"+policy.String(), func(b *testing.B) {
				cron := parseCronWithPolicyForTest(b, expression, "America/New_York", policy)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					benchSink = cron.Next(first.Add(time.Duration(i%240) * time.Minute))
					i++
				}
			})
		}
	}
}

func parseCronWithPolicyForTest(b *testing.B, expression, timezone string, policy DSTPolicy) *Cron {
	b.Helper()
	cron, err := ParseWith(expression, timezone, policy)
	if err != nil {
		b.Fatal(err)
	}
	return cron
}

var benchParseErr error

func BenchmarkParse(b *testing.B) {
	cases := []struct{ name, expression, timezone string }{
		{"simple-utc", "0 9 * * 1-5", "UTC"},
		{"simple-new-york", "0 9 * * 1-5", "America/New_York"},
		{"lists-and-steps", "0,15,30,45 8-18/2 1-15,20 1,4,7,10 1-5", "Europe/Berlin"},
		{"rejected", "0 0 30 2 *", "UTC"},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, benchParseErr = Parse(bc.expression, bc.timezone)
			}
		})
	}
}
