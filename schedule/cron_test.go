package schedule

import (
	"time"

	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requireCronRejected asserts that Parse fails with a *ValidationError about
// field whose message contains every fragment.
func requireCronRejected(t *testing.T, expression, timezone, field string, fragments ...string) {
	t.Helper()
	cron, err := Parse(expression, timezone)
	require.Error(t, err, "Parse(%q, %q) should fail", expression, timezone)
	assert.Nil(t, cron)
	var verr *ValidationError
	require.True(t, errors.As(err, &verr), "error %v is a %T, want *ValidationError", err, err)
	assert.Equal(t, field, verr.Field)
	assert.Equal(t, verr.Field+": "+verr.Message, err.Error())
	for _, fragment := range fragments {
		assert.Contains(t, verr.Message, fragment, "Parse(%q, %q)", expression, timezone)
	}
}

func TestParseRejectsExpressionsOutsideTheGrammar(t *testing.T) {
	tests := []struct {
		name       string
		expression string
		fragments  []string
	}{
		{"empty", "", []string{"empty", "exactly 5 fields"}},
		{"blank", " \t ", []string{"empty"}},
		{"too few fields", "0 9 * *", []string{"4 fields given", "exactly 5 required", "minute hour day-of-month month day-of-week"}},
		{"seconds field", "0 0 9 * * 1", []string{"6 fields given", "exactly 5 required", "seconds and year fields are not supported"}},
		{"seconds and year fields", "0 0 9 * * 1 2030", []string{"7 fields given", "seconds and year fields are not supported"}},
		{"eight fields", "0 0 9 * * 1 2030 x", []string{"8 fields given"}},
		{"daily shortcut", "@daily", []string{`shortcut "@daily" is not supported`, `"0 0 * * *"`}},
		{"hourly shortcut", "@hourly", []string{`"@hourly"`, `"0 * * * *"`}},
		{"reboot shortcut", "@reboot", []string{`shortcut "@reboot" is not supported`}},
		{"every shortcut", "@every 5m", []string{`shortcut "@every"`}},

		{"minute out of range", "60 * * * *", []string{`minute field "60"`, "value 60 out of range 0-59"}},
		{"hour out of range", "0 25 * * *", []string{`hour field "25"`, "value 25 out of range 0-23"}},
		{"day-of-month zero", "0 0 0 * *", []string{`day-of-month field "0"`, "out of range 1-31"}},
		{"day-of-month 32", "0 0 32 * *", []string{"value 32 out of range 1-31"}},
		{"month zero", "0 0 1 0 *", []string{`month field "0"`, "out of range 1-12"}},
		{"month 13", "0 0 1 13 *", []string{"value 13 out of range 1-12"}},
		{"day-of-week 8", "0 0 * * 8", []string{`day-of-week field "8"`, "value 8 out of range 0-7"}},
		{"out of range inside a list", "0 9,24 * * *", []string{`hour field "9,24"`, "value 24 out of range"}},
		{"out of range range end", "0 0 * * 1-9", []string{"value 9 out of range 0-7"}},
		{"huge value", "99999999999999999999 * * * *", []string{"out of range 0-59"}},

		{"month name", "0 0 1 JAN *", []string{`month field "JAN"`, `names such as "JAN" are not supported`, "1-12"}},
		{"weekday name", "0 9 * * MON-FRI", []string{`day-of-week field "MON-FRI"`, `"MON"`, "0 and 7 are Sunday"}},
		{"lower-case weekday name", "0 9 * * mon", []string{`"mon" are not supported`}},
		{"letters in minute", "x * * * *", []string{`minute field "x"`, "0-59"}},

		{"quartz question mark", "0 0 ? * 1", []string{`day-of-month field "?"`, `Quartz "?"`, `use "*"`}},
		{"quartz last day of month", "0 0 L * *", []string{`day-of-month field "L"`, `Quartz "L"`}},
		{"quartz last weekday", "0 0 * * 5L", []string{`day-of-week field "5L"`, `Quartz "L"`}},
		{"quartz nearest weekday", "0 0 15W * *", []string{`Quartz "W"`}},
		{"quartz nth weekday", "0 0 * * 5#3", []string{`day-of-week field "5#3"`, `Quartz "#"`}},

		{"empty list item", "1,,2 * * * *", []string{`minute field "1,,2"`, "list item 2 of 3 is empty"}},
		{"trailing comma", "0 1, * * *", []string{`hour field "1,"`, "list item 2 of 2 is empty"}},
		{"leading comma", ",5 * * * *", []string{"list item 1 of 2 is empty"}},
		{"plus sign", "+5 * * * *", []string{"signed numbers are not allowed"}},
		{"minus sign", "-5 * * * *", []string{"signed numbers are not allowed"}},
		{"negative range end", "0 1--2 * * *", []string{"signed numbers are not allowed"}},
		{"negative step", "*/-5 * * * *", []string{"signed numbers are not allowed"}},
		{"descending range", "0 22-2 * * *", []string{`hour field "22-2"`, "range 22-2 is descending"}},
		{"range missing end", "0 5- * * *", []string{`range "5-" is missing its end`}},
		{"range with three parts", "1-2-3 * * * *", []string{`"1-2-3" is not a range`}},
		{"star inside a range", "*-5 * * * *", []string{`mixes "*" with numbers`}},
		{"star after a number", "5* * * * *", []string{`mixes "*" with numbers`}},

		{"step zero", "*/0 * * * *", []string{`minute field "*/0"`, "step 0", "at least 1"}},
		{"step beyond the span", "*/61 * * * *", []string{"step 61", "larger than the field's 60 values"}},
		{"hour step beyond the span", "0 */25 * * *", []string{"step 25", "24 values"}},
		{"weekday step beyond the span", "0 0 * * */8", []string{"step 8", "7 values"}},
		{"step missing", "*/ * * * *", []string{"missing the step"}},
		{"step not a number", "*/x * * * *", []string{`names such as "x"`}},
		{"double step", "*/5/2 * * * *", []string{`more than one "/"`}},
		{"step from a single value", "5/15 * * * *", []string{`"5/15" steps from a single value`, `"*/15"`, `"5-59/15"`}},
		{"step without base", "/5 * * * *", []string{`needs "*" or a range`}},

		{"decimal point", "1.5 * * * *", []string{`unexpected character '.'`}},
		{"newline inside", "0 9 * * *\n", []string{`unexpected character '\n'`}},
		{"non-breaking space", "0\u00a09 * * * *", []string{"unexpected character"}},
		{"at sign inside a field", "0 @9 * * *", []string{`unexpected character '@'`}},
		{"too long", strings.Repeat("1,", 600) + "1 * * * *", []string{"bytes long", "at most 1024"}},

		{"february 30", "0 0 30 2 *", []string{"never fires: day-of-month 30 does not occur in month 2"}},
		{"february 30 and 31", "0 0 30,31 2 *", []string{"never fires: day-of-month 30,31 does not occur in month 2"}},
		{"31st of short months", "0 0 31 4,6,9,11 *", []string{"never fires: day-of-month 31 does not occur in months 4,6,9,11"}},
		{"never fires with a starred weekday", "0 0 31 4 */2", []string{"never fires"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireCronRejected(t, tt.expression, "UTC", "schedule.expression", tt.fragments...)
		})
	}
}

func TestParseRejectsTimezonesThatAreNotIANANames(t *testing.T) {
	tests := []struct {
		name      string
		timezone  string
		fragments []string
	}{
		{"empty", "", []string{"timezone is required", "IANA"}},
		{"blank", "  ", []string{"timezone is required"}},
		{"host local zone", "Local", []string{`"Local" is not allowed`}},
		{"unknown", "Mars/Base", []string{`unknown IANA timezone "Mars/Base"`}},
		{"abbreviation", "EST5EDT6", []string{"unknown IANA timezone"}},
		{"path traversal", "../../etc/passwd", []string{"unknown IANA timezone"}},
		{"padded", " UTC", []string{`unknown IANA timezone " UTC"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireCronRejected(t, "0 9 * * *", tt.timezone, "schedule.timezone", tt.fragments...)
		})
	}
}

func TestParseReportsTheExpressionBeforeTheTimezone(t *testing.T) {
	requireCronRejected(t, "0 0 30 2 *", "Mars/Base", "schedule.expression", "never fires")
}

func TestParseAcceptsTheGrammarAndEchoesTheExpression(t *testing.T) {
	tests := []struct {
		expression string
		timezone   string
		fixed      bool
	}{
		{"0 9 * * 1-5", "UTC", true},
		{"*/5 * * * *", "America/New_York", false},
		{"30 2 * * *", "Europe/Berlin", true},
		{"0 */2 * * *", "Asia/Kolkata", false},
		{"* 3 * * *", "UTC", false},
		{"0-59/15 0-23/6 * * *", "UTC", true},
		{"0,15,30,45 8-18 1-15 1,4,7,10 0-6", "Australia/Lord_Howe", true},
		{"5 4 * * 7", "America/Santiago", true},
		{"5 4 * * 0-7/7", "America/Santiago", true},
		{"0 0 29 2 *", "UTC", true},
		{"0 0 31 * *", "UTC", true},
		{"0 0 30,31 1-12 *", "UTC", true},
		{"0 0 31 4 5", "UTC", true},
		{"00 09 01 01 00", "UTC", true},
		{"59 23 31 12 7", "Pacific/Chatham", true},
		{"*/60 * * * *", "UTC", false},
		{"0 0 * * */7", "UTC", true},
		{"1,* 2 * * *", "UTC", true},
		{"1,* * * * *", "UTC", false},
		{"  0\t9  * *   1-5  ", "UTC", true},
	}
	for _, tt := range tests {
		t.Run(tt.expression, func(t *testing.T) {
			cron, err := Parse(tt.expression, tt.timezone)
			require.NoError(t, err)
			assert.Equal(t, tt.expression, cron.Expression(), "expression is echoed exactly as given")
			assert.Equal(t, tt.timezone, cron.Location().String())
			assert.Equal(t, tt.fixed, cron.Fixed())
		})
	}
}

func TestParseCompilesFieldsIntoBitsets(t *testing.T) {
	tests := []struct {
		expression string
		check      func(t *testing.T, c *Cron)
	}{
		{"*/15 * * * *", func(t *testing.T, c *Cron) {
			assert.Equal(t, uint64(1<<0|1<<15|1<<30|1<<45), c.minutes)
			assert.Equal(t, uint32(1<<24-1), c.hours)
		}},
		{"0 1-10/3 * * *", func(t *testing.T, c *Cron) {
			assert.Equal(t, uint32(1<<1|1<<4|1<<7|1<<10), c.hours)
		}},
		{"0 0 */10 */5 *", func(t *testing.T, c *Cron) {
			assert.Equal(t, uint32(1<<1|1<<11|1<<21|1<<31), c.daysOfMonth, "day-of-month steps start at 1")
			assert.Equal(t, uint16(1<<1|1<<6|1<<11), c.months, "month steps start at 1")
		}},
		{"0 0 * * 7", func(t *testing.T, c *Cron) {
			assert.Equal(t, uint8(1<<0), c.daysOfWeek, "7 is Sunday")
		}},
		{"0 0 * * 5-7", func(t *testing.T, c *Cron) {
			assert.Equal(t, uint8(1<<0|1<<5|1<<6), c.daysOfWeek)
		}},
		{"0 0 * * *", func(t *testing.T, c *Cron) {
			assert.Equal(t, uint8(1<<7-1), c.daysOfWeek)
			assert.Equal(t, uint32(1<<32-2), c.daysOfMonth)
			assert.Equal(t, uint16(1<<13-2), c.months)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.expression, func(t *testing.T) {
			cron, err := Parse(tt.expression, "UTC")
			require.NoError(t, err)
			tt.check(t, cron)
		})
	}
}

func TestParseAppliesVixieDayRuleByLeadingStar(t *testing.T) {
	tests := []struct {
		expression string
		eitherDay  bool
	}{
		{"0 0 13 * 5", true},
		{"0 0 1-7 * 1", true},
		{"0 0 */2 * 5", false},
		{"0 0 13 * */2", false},
		{"0 0 13 * *", false},
		{"0 0 * * 5", false},
		{"0 0 13 * *,5", false},
		{"0 0 1,*/2 * 5", true},
	}
	for _, tt := range tests {
		t.Run(tt.expression, func(t *testing.T) {
			cron, err := Parse(tt.expression, "UTC")
			require.NoError(t, err)
			assert.Equal(t, tt.eitherDay, cron.eitherDayMatches)
		})
	}
}

func TestCrossCheckWithGronxReportsItsRejection(t *testing.T) {
	verr := crossCheckWithGronx([]string{"0", "0", "*", "*", "9"})
	require.NotNil(t, verr)
	assert.Equal(t, "schedule.expression", verr.Field)
	assert.Contains(t, verr.Message, "rejected by the gronx cron validator")
	assert.Nil(t, crossCheckWithGronx([]string{"0", "9", "*", "*", "1-5"}))
}

func TestQuoteForMessageCutsLongInput(t *testing.T) {
	assert.Equal(t, `"abc"`, quoteForMessage("abc"))
	long := quoteForMessage(strings.Repeat("é", 100))
	assert.Equal(t, `"`+strings.Repeat("é", 64)+`"…`, long)
}

// Compile accepts exactly what Parse accepted and yields the same schedule.
func TestCompileMatchesParse(t *testing.T) {
	for _, c := range []struct{ expr, tz string }{
		{"*/5 * * * *", "UTC"}, {"0 9 * * 1-5", "Europe/Berlin"}, {"30 2 * * *", "America/New_York"}, {"0 0 29 2 *", "Asia/Kolkata"},
	} {
		p, err := Parse(c.expr, c.tz)
		require.NoError(t, err)
		k, err := Compile(c.expr, c.tz)
		require.NoError(t, err)
		from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		assert.Equal(t, p.Upcoming(from, 20), k.Upcoming(from, 20), c.expr)
	}
	_, err := Compile("0 0 30 2 *", "UTC")
	require.Error(t, err, "the strict grammar and never-fires check still apply")
}
