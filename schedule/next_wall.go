package schedule

import "math/bits"

// Wall times are readings of a zone's clock, counted in seconds since
// 1970-01-01 00:00 *on that clock*, as if the clock were UTC ("floating local
// time"). Matching a schedule only ever looks at wall times; dst.go maps them
// to real instants.

const (
	secondsPerMinute = 60
	secondsPerHour   = 60 * secondsPerMinute
	secondsPerDay    = 24 * secondsPerHour
)

// nextMatchingWall returns the earliest wall minute at or after from whose
// month, day, hour and minute the schedule allows, or false if there is none
// before limit. It skips whole months, days and hours using the bitsets, so
// its cost depends on how many fields reject, not on how far away the match
// is.
func (c *Cron) nextMatchingWall(from, limit int64) (int64, bool) {
	from = ceilDiv(from, secondsPerMinute) * secondsPerMinute
	day := floorDiv(from, secondsPerDay) // days since 1970-01-01 on the wall clock
	secondOfDay := from - day*secondsPerDay
	hour := int(secondOfDay / secondsPerHour)
	minute := int(secondOfDay % secondsPerHour / secondsPerMinute)
	year, month, dayOfMonth := civilFromDays(day)

	for day*secondsPerDay <= limit {
		if c.months&(1<<month) == 0 {
			year, month = c.nextAllowedMonth(year, month)
			dayOfMonth, hour, minute = 1, 0, 0
			day = daysFromCivil(year, month, 1)
			continue
		}
		monthLength := daysInMonth(year, month)
		nextDay := func() {
			day++
			dayOfMonth++
			hour, minute = 0, 0
			if dayOfMonth > monthLength {
				dayOfMonth = 1
				if month++; month > 12 {
					year, month = year+1, 1
				}
			}
		}

		if c.eitherDayMatches {
			if c.daysOfMonth&(1<<dayOfMonth) == 0 && c.daysOfWeek&(1<<weekdayOfDay(day)) == 0 {
				nextDay()
				continue
			}
		} else {
			// Both day fields must match: jump straight to the next allowed
			// day of the month, then test its weekday.
			allowed := nextSetBit(uint64(c.daysOfMonth), dayOfMonth)
			if allowed < 0 || allowed > monthLength {
				day += int64(monthLength - dayOfMonth)
				dayOfMonth = monthLength
				nextDay()
				continue
			}
			if allowed != dayOfMonth {
				day += int64(allowed - dayOfMonth)
				dayOfMonth, hour, minute = allowed, 0, 0
			}
			if c.daysOfWeek&(1<<weekdayOfDay(day)) == 0 {
				nextDay()
				continue
			}
		}

		allowedHour := nextSetBit(uint64(c.hours), hour)
		if allowedHour < 0 {
			nextDay()
			continue
		}
		if allowedHour != hour {
			hour, minute = allowedHour, 0
		}
		allowedMinute := nextSetBit(c.minutes, minute)
		if allowedMinute < 0 {
			if hour++; hour == 24 {
				nextDay()
			}
			minute = 0
			continue
		}
		return day*secondsPerDay + int64(hour)*secondsPerHour + int64(allowedMinute)*secondsPerMinute, true
	}
	return 0, false
}

// nextAllowedMonth returns the first allowed month after (year, month).
func (c *Cron) nextAllowedMonth(year, month int) (int, int) {
	if later := nextSetBit(uint64(c.months), month+1); later > 0 {
		return year, later
	}
	return year + 1, nextSetBit(uint64(c.months), 1)
}

// nextSetBit returns the lowest set bit of set at or above from, or -1.
func nextSetBit(set uint64, from int) int {
	if from >= 64 {
		return -1
	}
	rest := set >> uint(from)
	if rest == 0 {
		return -1
	}
	return from + bits.TrailingZeros64(rest)
}

// weekdayOfDay returns the weekday (Sunday = 0) of a day counted from
// 1970-01-01, which was a Thursday.
func weekdayOfDay(day int64) int { return int(floorMod(day+4, 7)) }

func daysInMonth(year, month int) int {
	if month == 2 && !isLeapYear(year) {
		return 28
	}
	return longestMonth[month]
}

func isLeapYear(year int) bool { return year%4 == 0 && (year%100 != 0 || year%400 == 0) }

// daysFromCivil and civilFromDays convert between proleptic Gregorian dates
// and days since 1970-01-01 without time.Time, using the era-based method
// from Howard Hinnant's "chrono-compatible low-level date algorithms".
func daysFromCivil(year, month, dayOfMonth int) int64 {
	y := int64(year)
	if month <= 2 {
		y--
	}
	era := floorDiv(y, 400)
	yearOfEra := y - era*400
	monthFromMarch := int64((month + 9) % 12)
	dayOfYear := (153*monthFromMarch+2)/5 + int64(dayOfMonth) - 1
	dayOfEra := yearOfEra*365 + yearOfEra/4 - yearOfEra/100 + dayOfYear
	return era*146097 + dayOfEra - 719468
}

func civilFromDays(days int64) (year, month, dayOfMonth int) {
	days += 719468
	era := floorDiv(days, 146097)
	dayOfEra := days - era*146097
	yearOfEra := (dayOfEra - dayOfEra/1460 + dayOfEra/36524 - dayOfEra/146096) / 365
	dayOfYear := dayOfEra - (365*yearOfEra + yearOfEra/4 - yearOfEra/100)
	monthFromMarch := (5*dayOfYear + 2) / 153
	dayOfMonth = int(dayOfYear - (153*monthFromMarch+2)/5 + 1)
	month = int(monthFromMarch + 3)
	if month > 12 {
		month -= 12
	}
	year = int(yearOfEra + era*400)
	if month <= 2 {
		year++
	}
	return year, month, dayOfMonth
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }
