// Package schedule owns when deployments fire: strict parsing of five-field
// cron expressions in an IANA timezone, next-fire times under the daemon's
// DST policy, and the timer loop that hands due fires to a worker pool. It
// must not know about storage, HTTP or sessions; callers give it ids,
// expressions and instants, and it gives back instants.
//
// # Parsing
//
// [Parse] accepts exactly five fields (minute hour day-of-month month
// day-of-week) made of "*", "*/N", "A", "A-B", "A-B/N" and comma lists of
// those, with plain decimals only. Everything else — names, Quartz "? L W #",
// "@daily" shortcuts, seconds or year fields, descending ranges, out-of-range
// values, schedules that can never fire — is a [*ValidationError] naming the
// wire field and saying what is wrong where. An expression that passes the
// strict grammar is then also checked by gronx (github.com/adhocore/gronx) so
// the two parsers never disagree about what is valid.
//
// # Next fire times and DST
//
// Matching happens on the wall clock of the schedule's zone, as a floating
// local time, and each matching wall time is then mapped to the real instants
// it denotes using the zone's own offsets and transition instants. A wall time
// can denote no instant (inside a spring-forward gap), one, or two (inside a
// fall-back repeat). The default policy, [DSTOnce], follows ISC cron and
// cronie:
//
//   - a fixed-time schedule (neither the minute nor the hour field starts with
//     "*") fires once at the transition instant for wall times that do not
//     exist, and only at the first occurrence of a repeated wall time, so
//     "30 2 * * *" runs exactly once every local day;
//   - a wildcard schedule fires at every real occurrence and skips wall times
//     that do not exist.
//
// [DSTLiteral] is the hosted API's literal wall-clock matching, for users who
// need identical fire times on both: every schedule follows the wildcard
// rule, so a skipped wall time is not triggered and a repeated one fires at
// both instants. The policy is chosen when a schedule is compiled
// ([ParseWith], [CompileWith]) and changes its never-fires check too.
//
// Production evaluation uses bitsets compiled by this package's own parser and
// skips by field (month, day, hour, minute) instead of stepping minute by
// minute, because [Cron.Next] runs for every deployment at startup and after
// every fire. gronx is not used there: evaluated in a DST zone it skips or
// errors near transitions, and its string matching is far slower. Besides
// validation, gronx serves as the independent matcher of the brute-force
// reference that the differential tests compare [Cron.Next] against.
//
// Timezones are the IANA names of the tz database embedded in the binary
// (package tzdb, the toolchain's copy that time/tzdata is built from), plus
// "UTC"; the host's zoneinfo is never read, so a schedule parses and fires
// the same on every host.
package schedule
