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
