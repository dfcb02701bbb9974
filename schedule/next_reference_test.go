package schedule

import (
	"fmt"
	"strings"
	"time"

	"github.com/adhocore/gronx"
)

// referenceCron is a deliberately naive model of the DST policy used to
// check Cron.Next. It shares nothing with the production code: it walks real
// instants minute by minute, reads the zone's wall clock with time.In, asks
// gronx whether that wall clock (as floating time in UTC) matches, and
// applies the DST policy by looking at neighbouring minutes: under DSTOnce
// the fixed/wildcard rules, under DSTLiteral the wildcard rule for every
// schedule (the hosted API's literal matching: every instant whose wall
// clock matches fires, a skipped wall time never does).
//
// The only shortcut is skipping a whole wall day or hour that gronx says
// cannot match, and only when the UTC offset is the same at both ends of the
// jump, so no transition (and no gap or repeat) lies inside it.
type referenceCron struct {
	location *time.Location
	// fixed: the once-per-local-day rule applies (a fixed-time schedule
	// under DSTOnce).
	fixed bool
	// gronx segments (seconds first): the full expression, and versions with
	// the minute, or minute and hour, widened to "*" for the day/hour skips.
	full, anyMinute, anyTime []string
	matcher                  *gronx.Gronx
	// The walk asks about every minute of a wall day or hour in turn, so
	// the answers of the widened checks for the last day and hour asked
	// about are kept (they depend on nothing else).
	day, hour             time.Time
	dayMatches, hourMatch bool
}

const referenceLookBackForRepeat = 3 * time.Hour

func newReferenceCron(expression string, location *time.Location, policy DSTPolicy) (*referenceCron, error) {
	full, err := gronx.Segments(expression)
	if err != nil {
		return nil, fmt.Errorf("gronx segments of %q: %w", expression, err)
	}
	if len(full) != 6 {
		return nil, fmt.Errorf("gronx split %q into %d segments, want 6", expression, len(full))
	}
	fields := strings.Fields(expression)
	anyMinute := append([]string{"0", "*"}, full[2:]...)
	anyTime := append([]string{"0", "*", "*"}, full[3:]...)
	return &referenceCron{
		location:  location,
		fixed:     policy == DSTOnce && !strings.HasPrefix(fields[0], "*") && !strings.HasPrefix(fields[1], "*"),
		full:      full,
		anyMinute: anyMinute,
		anyTime:   anyTime,
		matcher:   gronx.New(),
	}, nil
}

// wallClock is the zone's reading at instant as a floating time in UTC.
func (r *referenceCron) wallClock(instant time.Time) time.Time {
	local := instant.In(r.location)
	year, month, day := local.Date()
	hour, minute, _ := local.Clock()
	return time.Date(year, month, day, hour, minute, 0, 0, time.UTC)
}

func (r *referenceCron) offsetAt(instant time.Time) int {
	_, offset := instant.In(r.location).Zone()
	return offset
}

func (r *referenceCron) matches(segments []string, wall time.Time) bool {
	r.matcher.C.SetRef(wall)
	due, err := r.matcher.SegmentsDue(segments)
	if err != nil {
		panic(fmt.Sprintf("gronx rejected %v at %s: %v", segments, wall, err))
	}
	return due
}

// next returns the first instant after `after` at which the schedule fires,
// or the zero Time if there is none before `after`+horizon.
func (r *referenceCron) next(after time.Time, horizon time.Duration) time.Time {
	deadline := after.Add(horizon)
	for instant := after.Truncate(time.Minute).Add(time.Minute); instant.Before(deadline); {
		wall := r.wallClock(instant)
		if r.fixed {
			// Clocks jumped forward at this instant: every skipped wall
			// minute that matches fires here, once.
			for skipped := r.wallClock(instant.Add(-time.Minute)).Add(time.Minute); skipped.Before(wall); skipped = skipped.Add(time.Minute) {
				if r.matches(r.full, skipped) {
					return instant
				}
			}
		}
		// A wall time the widened checks reject cannot match in full.
		if r.dayCanMatch(wall) && r.hourCanMatch(wall) && r.matches(r.full, wall) && (!r.fixed || !r.wallSeenBefore(instant, wall)) {
			return instant
		}
		instant = r.advance(instant, wall)
	}
	return time.Time{}
}

// dayCanMatch reports whether any time of wall's day matches.
func (r *referenceCron) dayCanMatch(wall time.Time) bool {
	if day := wall.Truncate(24 * time.Hour); !day.Equal(r.day) {
		r.day, r.dayMatches = day, r.matches(r.anyTime, wall)
	}
	return r.dayMatches
}

// hourCanMatch reports whether any minute of wall's hour matches.
func (r *referenceCron) hourCanMatch(wall time.Time) bool {
	if hour := wall.Truncate(time.Hour); !hour.Equal(r.hour) {
		r.hour, r.hourMatch = hour, r.matches(r.anyMinute, wall)
	}
	return r.hourMatch
}

// wallSeenBefore reports whether the clock already showed wall at an earlier
// instant, i.e. instant is a second occurrence of a repeated wall time.
func (r *referenceCron) wallSeenBefore(instant, wall time.Time) bool {
	for back := time.Minute; back <= referenceLookBackForRepeat; back += time.Minute {
		if r.wallClock(instant.Add(-back)).Equal(wall) {
			return true
		}
	}
	return false
}

// advance returns the next instant worth examining: the start of the next
// wall day or hour when the current one cannot match and no offset change
// lies in between, else the next minute.
func (r *referenceCron) advance(instant, wall time.Time) time.Time {
	var targets []time.Time
	nextDay := time.Date(wall.Year(), wall.Month(), wall.Day()+1, 0, 0, 0, 0, time.UTC)
	nextHour := wall.Truncate(time.Hour).Add(time.Hour)
	switch {
	case !r.dayCanMatch(wall):
		targets = append(targets, nextDay, nextHour) // no hour of the day can match either
	case !r.hourCanMatch(wall):
		targets = append(targets, nextHour)
	}
	offset := r.offsetAt(instant)
	for _, target := range targets {
		landing := instant.Add(target.Sub(wall))
		if r.offsetAt(landing) == offset && r.offsetAt(landing.Add(-time.Minute)) == offset {
			return landing
		}
	}
	return instant.Add(time.Minute)
}
