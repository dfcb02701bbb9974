package schedule

import (
	"math"
	"time"
)

// searchHorizon is how far past `after` (on the wall clock) Next looks. The
// rarest valid schedules, such as February 29 restricted to one weekday by an
// AND-combined day-of-week ("0 0 29 2 */7"), go up to 40 years between fires
// around a skipped leap day in 2100.
const searchHorizon = 100 * 366 * secondsPerDay

// lastSupportedInstant is the end of year 9999 UTC; later `after` values
// have no next fire rather than risking overflow.
const lastSupportedInstant = 253402300799

// Next returns the first instant strictly after `after` at which the schedule
// fires, in UTC, under the DST policy described in the package
// documentation. It returns the zero Time if there is none within the search
// horizon (about a century), which a schedule accepted by Parse only reaches
// if every one of its wall times falls into DST gaps, or if `after` is past
// the year 9999.
//
// Matching wall times are enumerated in wall order starting a little before
// the wall time of `after`: around a fall-back transition an instant after
// `after` can carry an earlier wall reading, so wall order and real order
// differ. The enumeration stops once no later wall time can denote an
// instant earlier than the best one found.
func (c *Cron) Next(after time.Time) time.Time {
	best, found := c.next(after.Unix())
	if !found {
		return time.Time{}
	}
	return time.Unix(best, 0).UTC()
}

// Upcoming returns up to n successive fire instants after `after`, in UTC
// and increasing order. It returns fewer only when Next finds no more.
func (c *Cron) Upcoming(after time.Time, n int) []time.Time {
	if n <= 0 {
		return nil
	}
	upcoming := make([]time.Time, 0, min(n, 16))
	for len(upcoming) < n {
		fire := c.Next(after)
		if fire.IsZero() {
			break
		}
		upcoming = append(upcoming, fire)
		after = fire
	}
	return upcoming
}

// next works in whole Unix seconds: fire instants are whole seconds, so
// "strictly after `after`" is "greater than after's whole second", whatever
// its fraction.
func (c *Cron) next(after int64) (int64, bool) {
	if c == nil || c.location == nil || c.months == 0 || after > lastSupportedInstant {
		return 0, false
	}
	here := zonePeriodAt(c.location, after)
	wallAfter := after + here.offset
	limit := wallAfter + searchHorizon

	var best, stopAt int64
	found := false
	wall := wallAfter - c.lookback(after, here)
	for {
		var ok bool
		if wall, ok = c.nextMatchingWall(wall, limit); !ok {
			break
		}
		if found && wall >= stopAt {
			break
		}
		fires, count := c.fireInstants(wall, here)
		for _, fire := range fires[:count] {
			if fire > after && (!found || fire < best) {
				best, found = fire, true
				stopAt = best + maxOffsetThrough(c.location, here, best)
			}
		}
		wall += secondsPerMinute
	}
	return best, found
}

// lookback is how far before wall(after) the enumeration must start. A wall
// time w below wall(after) can only matter if it denotes (or, in a gap,
// fires at) an instant t > after in a later period whose offset is lower by
// drop: then w >= t + that offset forces t - after < drop, so the period
// must begin less than drop after `after`. Hence the lookback is zero except
// within an hour or so before a fall-back transition. Periods starting more
// than twice maxZoneOffset away cannot qualify.
func (c *Cron) lookback(after int64, here zonePeriod) int64 {
	var back int64
	period := here
	for walked := 0; period.end <= after+2*maxZoneOffset && walked < 16; walked++ {
		period = zonePeriodAt(c.location, period.end)
		if drop := here.offset - period.offset; drop > back && period.start-after < drop {
			back = drop
		}
	}
	return back
}

// maxOffsetThrough returns the largest UTC offset in effect from here's
// period up to the instant `until`. A wall time w can denote (or, in a gap,
// fire at) an instant t only if w <= t + offset(t), so once the enumeration
// reaches best + this bound, no later wall time can beat best.
func maxOffsetThrough(loc *time.Location, here zonePeriod, until int64) int64 {
	highest := here.offset
	period := here
	for walked := 0; period.end <= until; walked++ {
		if walked == 64 || period.end == math.MaxInt64 {
			return maxZoneOffset
		}
		period = zonePeriodAt(loc, period.end)
		highest = max(highest, period.offset)
	}
	return highest
}
