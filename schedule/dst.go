package schedule

import (
	"math"
	"sync"
	"time"
)

// maxZoneOffset bounds the distance between a wall time and the instants it
// denotes: no UTC offset in the tz database, local mean times included,
// reaches 16 hours. Windows derived from it are deliberately generous; they
// only decide how far around a wall time the zone is consulted.
const maxZoneOffset = 18 * secondsPerHour

// maxWallOccurrences caps how many instants one wall time can denote. Real
// zones need two (a fall-back repeat); the slack absorbs pathological
// histories without allocating.
const maxWallOccurrences = 4

// zonePeriod is a stretch of real time [start, end) (Unix seconds) during
// which the zone keeps one UTC offset (seconds east). start and end are
// math.MinInt64 and math.MaxInt64 when the period is unbounded.
type zonePeriod struct {
	start, end int64
	offset     int64
}

func zonePeriodAt(loc *time.Location, instant int64) zonePeriod {
	zc := zoneCacheOf(loc)
	if p, ok := zc.lookup(instant); ok {
		return p
	}
	p := computeZonePeriod(loc, instant)
	zc.remember(p)
	return p
}

// Periods are cached per zone. Past a zone's last listed transition, which
// with the embedded database's slim files is ~2007 for most zones, every
// ZoneBounds call re-parses the zone's TZ rule string (time.tzset), and the
// merging below makes several calls: Next in New York cost 1.6 µs against
// 0.28 µs when the host's fat files were read, and the leap-day schedule
// 15 µs. A period depends only on the zone and the instant, and one period
// covers months, so a few remembered periods per zone answer nearly every
// lookup. A cached period was computed from another instant of the same
// period: its bounds may sit at a different one of the same-offset cuts
// that the merging joins, which callers treat as they treat those cuts.
const zoneCachePeriods = 8

type zoneCache struct {
	mu      sync.Mutex
	periods [zoneCachePeriods]zonePeriod
	n, next int // filled entries; the one to replace next
}

// zoneCaches holds one zoneCache per *time.Location. Locations come from
// tzdb.Load, which keeps one per zone name, so this is bounded by the
// number of zones.
var zoneCaches sync.Map

func zoneCacheOf(loc *time.Location) *zoneCache {
	if zc, ok := zoneCaches.Load(loc); ok {
		return zc.(*zoneCache)
	}
	zc, _ := zoneCaches.LoadOrStore(loc, new(zoneCache))
	return zc.(*zoneCache)
}

func (zc *zoneCache) lookup(instant int64) (zonePeriod, bool) {
	zc.mu.Lock()
	defer zc.mu.Unlock()
	for _, p := range zc.periods[:zc.n] {
		if p.start <= instant && instant < p.end {
			return p, true
		}
	}
	return zonePeriod{}, false
}

func (zc *zoneCache) remember(p zonePeriod) {
	zc.mu.Lock()
	defer zc.mu.Unlock()
	zc.periods[zc.next] = p
	zc.next = (zc.next + 1) % zoneCachePeriods
	zc.n = max(zc.n, zc.next)
	if zc.next == 0 {
		zc.n = zoneCachePeriods
	}
}

// computeZonePeriod is zonePeriodAt without the cache.
func computeZonePeriod(loc *time.Location, instant int64) zonePeriod {
	period := rawZonePeriod(loc, instant)
	// Past a zone's last listed transition, where its TZ rule string takes
	// over (always, with the slim files of the embedded database), Go's
	// ZoneBounds cuts periods at UTC year boundaries, and in a leap year it
	// ends the year's last period at December 31 00:00 UTC, a day early, so
	// for instants of that day the period ends before the instant (tzset in
	// time/zoneinfo.go adds 365 days to the year's start). Periods are
	// therefore merged across cuts at 00:00 UTC on December 31 or January 1
	// that do not change the offset, which also repairs the early end.
	for range 4 {
		if period.end == math.MaxInt64 || !nearUTCYearEnd(period.end) {
			break
		}
		probe := period.end
		if probe <= instant {
			probe = instant + secondsPerDay // the early end: look into the next year
		}
		next := rawZonePeriod(loc, probe)
		if next.offset != period.offset || next.start > probe {
			period.end = max(period.end, instant+1)
			break
		}
		period.end = next.end
	}
	for range 4 {
		if period.start == math.MinInt64 || !nearUTCYearEnd(period.start) {
			break
		}
		previous := rawZonePeriod(loc, period.start-1)
		if previous.offset != period.offset {
			break
		}
		period.start = previous.start
	}
	return period
}

func rawZonePeriod(loc *time.Location, instant int64) zonePeriod {
	t := time.Unix(instant, 0).In(loc)
	_, offset := t.Zone()
	start, end := t.ZoneBounds()
	period := zonePeriod{start: math.MinInt64, end: math.MaxInt64, offset: int64(offset)}
	if !start.IsZero() {
		period.start = start.Unix()
	}
	if !end.IsZero() {
		period.end = end.Unix()
	}
	return period
}

// nearUTCYearEnd reports whether instant is 00:00 UTC on December 31 or
// January 1, where ZoneBounds may cut a period that does not really end.
func nearUTCYearEnd(instant int64) bool {
	if floorMod(instant, secondsPerDay) != 0 {
		return false
	}
	_, month, day := civilFromDays(floorDiv(instant, secondsPerDay))
	return (month == 12 && day == 31) || (month == 1 && day == 1)
}

// covers reports whether every instant within maxZoneOffset of wall (read
// as an instant) lies in the period, in which case wall denotes exactly one
// instant, wall-offset, and no zone lookup is needed.
func (p zonePeriod) covers(wall int64) bool {
	return p.start <= wall-maxZoneOffset && wall+maxZoneOffset < p.end
}

// wallOccurrences maps a wall time to the real instants it denotes in loc,
// in increasing order, by walking the zone's periods around it and keeping
// each period whose offset puts wall inside it. It does not rely on
// time.Date, whose choice inside gaps and repeats is unspecified.
//
// When wall denotes no instant it lies in a spring-forward gap, and
// gapEnd is the transition instant that skipped it: the first real instant
// whose wall time is past it.
func wallOccurrences(loc *time.Location, wall int64) (occurrences [maxWallOccurrences]int64, count int, gapEnd int64, inGap bool) {
	period := zonePeriodAt(loc, wall-maxZoneOffset)
	var previous zonePeriod
	for walked := 0; walked < 16; walked++ {
		if instant := wall - period.offset; period.start <= instant && instant < period.end && count < maxWallOccurrences {
			occurrences[count] = instant
			count++
		}
		// The clocks jumped over wall when the previous period's last
		// reading is at or before it and this period's first is after it.
		if walked > 0 && !inGap && period.start+previous.offset <= wall && wall < period.start+period.offset {
			gapEnd, inGap = period.start, true
		}
		if period.end == math.MaxInt64 || period.end > wall+maxZoneOffset {
			break
		}
		previous, period = period, zonePeriodAt(loc, period.end)
	}
	if count > 0 {
		inGap = false
	}
	return occurrences, count, gapEnd, inGap
}

// fireInstants applies the DST policy to one matching wall time and returns
// the instants it fires at, in increasing order. here is a zone period known
// to the caller, used to skip the zone lookups away from transitions.
//
// Under DSTOnce a fixed-time schedule fires at the first occurrence of a
// repeated wall time and at the transition instant for a skipped one; a
// wildcard schedule, and every schedule under DSTLiteral, fires at every
// occurrence and never for a skipped one.
func (c *Cron) fireInstants(wall int64, here zonePeriod) (fires [maxWallOccurrences]int64, count int) {
	if here.covers(wall) {
		fires[0] = wall - here.offset
		return fires, 1
	}
	occurrences, count, gapEnd, inGap := wallOccurrences(c.location, wall)
	switch {
	case !c.oncePerDay():
		return occurrences, count
	case inGap:
		fires[0] = gapEnd
		return fires, 1
	case count > 0:
		fires[0] = occurrences[0]
		return fires, 1
	}
	return fires, 0
}
