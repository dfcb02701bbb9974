package schedule

import (
	"strings"
	"time"

	"github.com/sandbox0/sandbox0d/schedule/tzdb"
)

// Wire names of the schedule fields a ValidationError can be about.
const (
	expressionFieldName = "schedule.expression"
	timezoneFieldName   = "schedule.timezone"
)

// ValidationError is a rejected schedule. Field is the wire name of the
// offending field ("schedule.expression" or "schedule.timezone") and Message says what is
// wrong and where, in words fit for an API error.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// Cron is a validated, compiled schedule. It is immutable and safe for
// concurrent use.
type Cron struct {
	expression string
	location   *time.Location

	// One bit per allowed value: bit m of minutes is minute m, bit d of
	// daysOfMonth is day d (1-31), bit w of daysOfWeek is weekday w with
	// Sunday as 0 (a 7 in the expression sets bit 0).
	minutes     uint64
	hours       uint32
	daysOfMonth uint32
	months      uint16
	daysOfWeek  uint8

	// eitherDayMatches is Vixie cron's rule: when both day fields are
	// restricted (neither starts with "*"), a day matches if either does.
	eitherDayMatches bool
	// fixed records that the minute and hour fields name fixed times of
	// day: see Fixed.
	fixed bool
	// policy is the DST policy the schedule was compiled under.
	policy DSTPolicy
}

// Parse validates a five-field cron expression and an IANA timezone,
// returning a schedule compiled under the default DST policy (DSTOnce).
// Every rejection is a *ValidationError.
func Parse(expression, timezone string) (*Cron, error) {
	return ParseWith(expression, timezone, DSTOnce)
}

// ParseWith is Parse under the given DST policy. The never-fires check
// follows the policy: under DSTLiteral a fixed-time schedule whose every
// matching time falls inside a spring-forward gap is rejected, since it
// would never be triggered.
func ParseWith(expression, timezone string, policy DSTPolicy) (*Cron, error) {
	now := time.Now()
	if c := cachedParse(expression, timezone, policy, now); c != nil {
		return c, nil
	}
	c, err := parse(expression, timezone, policy, true)
	if err != nil {
		return nil, err
	}
	rememberParse(expression, timezone, policy, c, now)
	return c, nil
}

// Compile rebuilds a schedule that Parse accepted when it was stored, under
// the default DST policy. It applies the same strict grammar and checks but
// skips the gronx cross-check, which only guards new input: loading 100,000
// stored schedules at startup should not pay for it again.
func Compile(expression, timezone string) (*Cron, error) {
	return CompileWith(expression, timezone, DSTOnce)
}

// CompileWith is Compile under the given DST policy. Like Compile it skips
// the never-fires check, so a stored schedule that the policy leaves
// without fire times loads and has no next fire (Next returns the zero
// Time).
func CompileWith(expression, timezone string, policy DSTPolicy) (*Cron, error) {
	return parse(expression, timezone, policy, false)
}

func parse(expression, timezone string, policy DSTPolicy, crossCheck bool) (*Cron, error) {
	c, verr := compileExpression(expression, crossCheck)
	if verr != nil {
		return nil, verr
	}
	loc, verr := loadTimezone(timezone)
	if verr != nil {
		return nil, verr
	}
	c.location = loc
	c.policy = policy
	if crossCheck {
		// New input only: a stored schedule keeps loading even if a tz
		// database update leaves it without fire times.
		if verr := checkFiresInZone(c, timezone, time.Now().Unix()); verr != nil {
			return nil, verr
		}
	}
	return c, nil
}

// Expression returns the expression exactly as it was given to Parse.
func (c *Cron) Expression() string { return c.expression }

// Location returns the zone whose wall clock the schedule follows.
func (c *Cron) Location() *time.Location { return c.location }

// Fixed reports whether the schedule names fixed times of day: neither the
// minute nor the hour field starts with "*". Under DSTOnce, fixed schedules
// fire once for a wall time skipped by a DST gap and once for a repeated
// wall time; the others, and every schedule under DSTLiteral, follow the
// real clock (see the package documentation).
func (c *Cron) Fixed() bool { return c.fixed }

// Policy returns the DST policy the schedule was compiled under.
func (c *Cron) Policy() DSTPolicy { return c.policy }

// oncePerDay reports whether the once-per-local-day rule applies: a fixed
// schedule under DSTOnce. Every other schedule fires at each real
// occurrence of a matching wall time and never for a skipped one.
func (c *Cron) oncePerDay() bool { return c.fixed && c.policy == DSTOnce }

func loadTimezone(name string) (*time.Location, *ValidationError) {
	switch {
	case strings.TrimSpace(name) == "":
		return nil, timezoneError(`timezone is required: an IANA name such as "UTC" or "Europe/Berlin"`)
	case name == "Local":
		return nil, timezoneError(`"Local" is not allowed: it depends on the host; name the IANA timezone, e.g. "Europe/Berlin"`)
	}
	// Zones come from the embedded database only (see package tzdb), so
	// what parses and when it fires never depends on the host's zoneinfo.
	loc, err := tzdb.Load(name)
	if err != nil {
		return nil, timezoneError("unknown IANA timezone " + quoteForMessage(name) +
			`: use a name of the IANA tz database, such as "UTC" or "Europe/Berlin"`)
	}
	return loc, nil
}

func timezoneError(message string) *ValidationError {
	return &ValidationError{Field: timezoneFieldName, Message: message}
}

func expressionError(message string) *ValidationError {
	return &ValidationError{Field: expressionFieldName, Message: message}
}
