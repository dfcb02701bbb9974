package schedule

import "fmt"

// DSTPolicy says what a schedule does with the wall times that a daylight
// saving transition skips (spring forward) or repeats (fall back). It only
// changes fixed-time schedules: a wildcard schedule ("*/15 * * * *") follows
// the real clock under both.
type DSTPolicy uint8

const (
	// DSTOnce, the default, runs a fixed-time schedule exactly once per
	// local day: a skipped wall time fires at the transition instant, a
	// repeated one only at its first occurrence (ISC cron, cronie).
	DSTOnce DSTPolicy = iota
	// DSTLiteral matches the wall clock literally, as the hosted API's
	// scheduled deployments do: a wall time that does not exist is not
	// triggered, and one that occurs twice fires at both instants. Users
	// moving schedules between sandbox0d and the hosted API choose it to
	// get identical fire times.
	DSTLiteral
)

// DSTPolicyNames lists the accepted spellings, in the order help text shows
// them.
var DSTPolicyNames = []string{"once", "literal"}

// ParseDSTPolicy reads a policy name ("once" or "literal"). The error says
// what is allowed; callers prefix the config key or flag it came from.
func ParseDSTPolicy(name string) (DSTPolicy, error) {
	switch name {
	case "once":
		return DSTOnce, nil
	case "literal":
		return DSTLiteral, nil
	}
	return DSTOnce, fmt.Errorf(`must be "once" (a fixed-time schedule fires exactly once per local day) or "literal" `+
		`(the hosted API's wall-clock matching: skipped times do not fire, repeated times fire twice), got %q`, name)
}

func (p DSTPolicy) String() string {
	if p == DSTLiteral {
		return "literal"
	}
	return "once"
}
