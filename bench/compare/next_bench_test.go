package compare

import (
	"testing"
	"time"

	robfig "github.com/robfig/cron/v3"

	"github.com/sandbox0/sandbox0d/schedule"
)

// benchStarts spreads the `after` arguments over a year so the numbers
// include zone lookups in both DST and standard time, not one cached period
// (the same starts as schedule's BenchmarkNext).
func benchStarts() []time.Time {
	starts := make([]time.Time, 1024)
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range starts {
		starts[i] = first.Add(time.Duration(i) * (8*time.Hour + 33*time.Minute + 17*time.Second))
	}
	return starts
}

var benchSink time.Time

// BenchmarkNext compares Cron.Next with robfig/cron's Schedule.Next (given
// the same zone through CRON_TZ) on common and rare expressions.
func BenchmarkNext(b *testing.B) {
	starts := benchStarts()
	for _, bc := range []struct{ name, expression, timezone string }{
		{"every-5-minutes", "*/5 * * * *", "America/New_York"},
		{"weekdays-at-9", "0 9 * * 1-5", "America/New_York"},
		{"leap-day", "0 0 29 2 *", "America/New_York"},
		{"13th-or-friday", "0 0 13 * 5", "America/New_York"},
		{"every-5-minutes-utc", "*/5 * * * *", "UTC"},
		{"daily-0230-berlin", "30 2 * * *", "Europe/Berlin"},
	} {
		b.Run(bc.name+"/sandbox0d", func(b *testing.B) {
			cron, err := schedule.Parse(bc.expression, bc.timezone)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				benchSink = cron.Next(starts[i%len(starts)])
				i++
			}
		})
		b.Run(bc.name+"/robfig", func(b *testing.B) {
			sched, err := robfig.ParseStandard("CRON_TZ=" + bc.timezone + " " + bc.expression)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				benchSink = sched.Next(starts[i%len(starts)])
				i++
			}
		})
	}
}
