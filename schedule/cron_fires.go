package schedule

import (
	"fmt"
	"math/bits"
)

// longestMonth is the most days month m can have in any year (February
// counts its leap day, so "0 0 29 2 *" is a valid, rare schedule).
var longestMonth = [13]int{1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}

// checkCanFire rejects schedules whose day-of-month and month fields never
// meet. Only the day-of-month/month pairing can make a schedule impossible:
// every month runs through every weekday, and over the Gregorian cycle every
// (month, day) pair, February 29 included, falls on every weekday. So when
// Vixie's OR rule applies (both day fields restricted) the weekday alone
// keeps the schedule alive, and otherwise some allowed day must exist in some
// allowed month.
func checkCanFire(c *Cron, fields []string) *ValidationError {
	if c.eitherDayMatches {
		return nil
	}
	for month := 1; month <= 12; month++ {
		if c.months&(1<<month) != 0 && c.daysOfMonth&daysUpTo(longestMonth[month]) != 0 {
			return nil
		}
	}
	monthWord := "month"
	if bits.OnesCount16(c.months) > 1 {
		monthWord = "months"
	}
	return expressionError(fmt.Sprintf("never fires: day-of-month %s does not occur in %s %s",
		fields[cronDayOfMonth], monthWord, fields[cronMonth]))
}

// daysUpTo is the day-of-month bitset of days 1..last.
func daysUpTo(last int) uint32 { return (uint32(1)<<(last+1) - 1) &^ 1 }

// Look-ahead of the per-zone check. Past the zone's listed transitions
// (the database lists them to 2037 at most) every zone follows a yearly TZ
// rule, and both the rule and the schedule's calendar repeat with the
// 400-year Gregorian cycle, so a schedule without a real fire time between
// now and one full cycle after 2038 has none ever, under today's rules.
const (
	zoneRulesEra   = 2145916800 // 2038-01-01T00:00:00Z
	gregorianCycle = 146097 * secondsPerDay
)

// firesInZone reports whether the schedule has at least one fire time at or
// after the instant from. Only a schedule that skips the wall times a
// spring-forward gap removes can fail: a wildcard one, or any one under
// DSTLiteral. A fixed-time one under DSTOnce fires at the transition
// instead. The look-ahead visits matching days, not
// minutes: a day away from any transition fires at its first matching
// minute, and a matching minute inside a gap jumps to the gap's end, so a
// schedule that only matches gap times costs a few zone lookups per year.
func (c *Cron) firesInZone(from int64) bool {
	if c.oncePerDay() || c.location == nil {
		return true
	}
	here := zonePeriodAt(c.location, from)
	wall := from + here.offset
	limit := max(wall, zoneRulesEra) + gregorianCycle + 366*secondsPerDay
	for {
		w, ok := c.nextMatchingWall(wall, limit)
		if !ok {
			return false
		}
		if !here.covers(w) {
			here = zonePeriodAt(c.location, w-here.offset)
			if here.covers(w) {
				return true
			}
		} else {
			return true
		}
		_, count, gapEnd, inGap := wallOccurrences(c.location, w)
		if count > 0 {
			return true
		}
		next := w + secondsPerMinute
		if inGap {
			// Every wall time up to the first reading after the jump is gone.
			next = max(next, gapEnd+zonePeriodAt(c.location, gapEnd).offset)
		}
		wall = next
	}
}

func checkFiresInZone(c *Cron, timezone string, from int64) *ValidationError {
	if c.firesInZone(from) {
		return nil
	}
	if c.policy == DSTLiteral {
		return expressionError(fmt.Sprintf("never fires in %s under the daemon's schedule.dst_policy literal: every time it matches "+
			"falls inside a daylight-saving gap, where the clock skips forward, and literal wall-clock matching does not trigger "+
			"times that do not exist; choose times outside the gap (transitions are usually between 01:00 and 03:00 local), "+
			"or run the daemon with schedule.dst_policy once, which fires them at the transition", quoteForMessage(timezone)))
	}
	return expressionError(fmt.Sprintf("never fires in %s: every time it matches falls inside a daylight-saving gap, "+
		"where the clock skips forward (a schedule with \"*\" in its minute or hour field skips those times); "+
		"choose times outside the gap, or fixed minute and hour values, which run at the transition", quoteForMessage(timezone)))
}
