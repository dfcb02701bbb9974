package schedule

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/adhocore/gronx"
)

// maxExpressionBytes bounds what the parser reads; a list of every minute
// and every hour is well under it.
const maxExpressionBytes = 1024

// cronFieldSpec describes one of the five positions of an expression.
type cronFieldSpec struct {
	name     string
	min, max int
	// values is the number of distinct values the field can take, and the
	// largest step that still means something.
	values int
	// numbersHint is appended when the field holds letters.
	numbersHint string
	// isDayField marks the fields where Quartz puts "L" and "W".
	isDayField bool
}

// Positions of the five fields, in expression order.
const (
	cronMinute = iota
	cronHour
	cronDayOfMonth
	cronMonth
	cronDayOfWeek
	cronFieldCount
)

var cronFieldSpecs = [cronFieldCount]cronFieldSpec{
	cronMinute:     {name: "minute", min: 0, max: 59, values: 60, numbersHint: "use numbers 0-59"},
	cronHour:       {name: "hour", min: 0, max: 23, values: 24, numbersHint: "use numbers 0-23"},
	cronDayOfMonth: {name: "day-of-month", min: 1, max: 31, values: 31, numbersHint: "use numbers 1-31", isDayField: true},
	cronMonth:      {name: "month", min: 1, max: 12, values: 12, numbersHint: "use numbers 1-12"},
	cronDayOfWeek:  {name: "day-of-week", min: 0, max: 7, values: 7, numbersHint: "use numbers 0-7 (0 and 7 are Sunday)", isDayField: true},
}

const fieldOrderHint = "(minute hour day-of-month month day-of-week)"

// shortcutEquivalents lets the rejection of a well-known shortcut say what
// to write instead.
var shortcutEquivalents = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// compileExpression runs the strict grammar, the never-fires check and (when
// crossCheck) the gronx cross-check, in that order, and returns a Cron
// without a location.
func compileExpression(expression string, crossCheck bool) (*Cron, *ValidationError) {
	if len(expression) > maxExpressionBytes {
		return nil, expressionError(fmt.Sprintf("expression is %d bytes long; at most %d are allowed", len(expression), maxExpressionBytes))
	}
	fields := splitCronFields(expression)
	if verr := checkFieldCount(fields); verr != nil {
		return nil, verr
	}

	var bits [cronFieldCount]uint64
	for position, text := range fields {
		fieldBits, verr := parseCronField(text, cronFieldSpecs[position])
		if verr != nil {
			return nil, verr
		}
		bits[position] = fieldBits
	}

	daysOfWeek := uint8(bits[cronDayOfWeek] & 0x7f)
	if bits[cronDayOfWeek]&(1<<7) != 0 {
		daysOfWeek |= 1 // 7 is Sunday too
	}
	c := &Cron{
		expression:       expression,
		minutes:          bits[cronMinute],
		hours:            uint32(bits[cronHour]),
		daysOfMonth:      uint32(bits[cronDayOfMonth]),
		months:           uint16(bits[cronMonth]),
		daysOfWeek:       daysOfWeek,
		eitherDayMatches: !startsWithStar(fields[cronDayOfMonth]) && !startsWithStar(fields[cronDayOfWeek]),
		fixed:            !startsWithStar(fields[cronMinute]) && !startsWithStar(fields[cronHour]),
	}
	if verr := checkCanFire(c, fields); verr != nil {
		return nil, verr
	}
	if crossCheck {
		if verr := crossCheckWithGronx(fields); verr != nil {
			return nil, verr
		}
	}
	return c, nil
}

// splitCronFields splits on runs of spaces and tabs only: any other
// character, including other whitespace, must be rejected by the field
// grammar rather than silently taken as a separator.
func splitCronFields(expression string) []string {
	return strings.FieldsFunc(expression, func(r rune) bool { return r == ' ' || r == '\t' })
}

func checkFieldCount(fields []string) *ValidationError {
	switch n := len(fields); {
	case n == 0:
		return expressionError("expression is empty; exactly 5 fields required " + fieldOrderHint)
	case strings.HasPrefix(fields[0], "@"):
		shortcut := fields[0]
		if equivalent, known := shortcutEquivalents[strings.ToLower(shortcut)]; known {
			return expressionError(fmt.Sprintf("shortcut %s is not supported; write the five fields instead, e.g. %q",
				quoteForMessage(shortcut), equivalent))
		}
		return expressionError(fmt.Sprintf("shortcut %s is not supported; write five fields %s",
			quoteForMessage(shortcut), fieldOrderHint))
	case n == 6 || n == 7:
		return expressionError(fmt.Sprintf("%d fields given, exactly 5 required %s; seconds and year fields are not supported",
			n, fieldOrderHint))
	case n != cronFieldCount:
		return expressionError(fmt.Sprintf("%d fields given, exactly 5 required %s", n, fieldOrderHint))
	}
	return nil
}

// parseCronField turns one field into a bitset with bit v set for every
// value v it allows.
func parseCronField(text string, spec cronFieldSpec) (uint64, *ValidationError) {
	if detail := foreignCharacterProblem(text, spec); detail != "" {
		return 0, fieldError(spec, text, detail)
	}
	items := strings.Split(text, ",")
	var bits uint64
	for i, item := range items {
		if item == "" {
			return 0, fieldError(spec, text, fmt.Sprintf("list item %d of %d is empty", i+1, len(items)))
		}
		low, high, step, detail := parseCronItem(item, spec)
		if detail != "" {
			return 0, fieldError(spec, text, detail)
		}
		for v := low; v <= high; v += step {
			bits |= 1 << uint(v)
		}
	}
	return bits, nil
}

// parseCronItem parses one list item ("*", "*/N", "A", "A-B" or "A-B/N")
// into the values low, low+step, ... up to high. A non-empty detail says why
// the item is rejected.
func parseCronItem(item string, spec cronFieldSpec) (low, high, step int, detail string) {
	base, stepText, hasStep := strings.Cut(item, "/")
	if hasStep && strings.Contains(stepText, "/") {
		return 0, 0, 0, fmt.Sprintf("%q has more than one \"/\"", item)
	}
	step = 1
	if hasStep {
		if stepText == "" {
			return 0, 0, 0, fmt.Sprintf("%q is missing the step after \"/\"", item)
		}
		if strings.HasPrefix(stepText, "-") {
			return 0, 0, 0, "signed numbers are not allowed"
		}
		n, ok := parseDecimal(stepText)
		switch {
		case !ok:
			return 0, 0, 0, fmt.Sprintf("step %q is not a plain decimal number", stepText)
		case n == 0:
			return 0, 0, 0, fmt.Sprintf("step 0 in %q must be at least 1", item)
		case n > spec.values:
			return 0, 0, 0, fmt.Sprintf("step %s in %q is larger than the field's %d values", stepText, item, spec.values)
		}
		step = n
	}

	if base == "*" {
		return spec.min, spec.max, step, ""
	}
	if base == "" {
		return 0, 0, 0, fmt.Sprintf("%q needs \"*\" or a range before the \"/\"", item)
	}
	if strings.HasPrefix(base, "-") {
		return 0, 0, 0, "signed numbers are not allowed"
	}
	if strings.Contains(base, "*") {
		return 0, 0, 0, fmt.Sprintf("%q mixes \"*\" with numbers; \"*\" stands alone or as \"*/N\"", item)
	}
	startText, endText, isRange := strings.Cut(base, "-")
	if isRange {
		switch {
		case endText == "":
			return 0, 0, 0, fmt.Sprintf("range %q is missing its end", base)
		case strings.HasPrefix(endText, "-"):
			return 0, 0, 0, "signed numbers are not allowed"
		case strings.Contains(endText, "-"):
			return 0, 0, 0, fmt.Sprintf("%q is not a range; write A-B", base)
		}
	}
	if hasStep && !isRange {
		return 0, 0, 0, fmt.Sprintf("%q steps from a single value; a step needs \"*\" or a range before \"/\", e.g. \"*/%s\" or \"%s-%d/%s\"",
			item, stepText, startText, spec.max, stepText)
	}

	low, detail = parseFieldValue(startText, spec)
	if detail != "" {
		return 0, 0, 0, detail
	}
	high = low
	if isRange {
		if high, detail = parseFieldValue(endText, spec); detail != "" {
			return 0, 0, 0, detail
		}
		if low > high {
			return 0, 0, 0, fmt.Sprintf("range %s is descending; write ranges from low to high (wrap-around ranges are not supported)", base)
		}
	}
	return low, high, step, ""
}

func parseFieldValue(text string, spec cronFieldSpec) (int, string) {
	v, ok := parseDecimal(text)
	if !ok {
		return 0, fmt.Sprintf("%q is not a plain decimal number", text)
	}
	if v < spec.min || v > spec.max {
		return 0, fmt.Sprintf("value %s out of range %d-%d", text, spec.min, spec.max)
	}
	return v, ""
}

// parseDecimal accepts ASCII digits only (leading zeros allowed, no sign).
// Values too large for any field saturate instead of overflowing.
func parseDecimal(text string) (int, bool) {
	if text == "" {
		return 0, false
	}
	const saturated = 1 << 20
	v := 0
	for i := 0; i < len(text); i++ {
		ch := text[i]
		if ch < '0' || ch > '9' {
			return 0, false
		}
		v = min(v*10+int(ch-'0'), saturated)
	}
	return v, true
}

// foreignCharacterProblem explains the first character outside the grammar's
// alphabet (digits and "*,-/"), recognising the usual imports from other
// cron dialects so the message can say what to write instead.
func foreignCharacterProblem(text string, spec cronFieldSpec) string {
	for i, r := range text {
		switch {
		case r >= '0' && r <= '9', r == '*', r == ',', r == '-', r == '/':
			continue
		case r == '+':
			return "signed numbers are not allowed"
		case r == '?':
			return `Quartz "?" is not supported; use "*"`
		case r == '#':
			return `Quartz "#" (nth weekday of the month) is not supported`
		case isASCIILetter(r):
			return letterProblem(letterRun(text[i:]), spec)
		default:
			return fmt.Sprintf("unexpected character %q", r)
		}
	}
	return ""
}

func letterProblem(word string, spec cronFieldSpec) string {
	if spec.isDayField && strings.Trim(strings.ToUpper(word), "LW") == "" {
		if strings.ToUpper(word)[0] == 'L' {
			return `Quartz "L" (last day) is not supported`
		}
		return `Quartz "W" (nearest weekday) is not supported`
	}
	return fmt.Sprintf("names such as %q are not supported; %s", word, spec.numbersHint)
}

func letterRun(text string) string {
	end := 0
	for end < len(text) && isASCIILetter(rune(text[end])) {
		end++
	}
	return text[:end]
}

func isASCIILetter(r rune) bool { return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') }

func startsWithStar(field string) bool { return strings.HasPrefix(field, "*") }

func fieldError(spec cronFieldSpec, text, detail string) *ValidationError {
	return expressionError(fmt.Sprintf("%s field %s: %s", spec.name, quoteForMessage(text), detail))
}

// crossCheckWithGronx asks gronx whether it accepts what the strict grammar
// accepted, so the daemon never stores an expression gronx-based tools
// would refuse.
func crossCheckWithGronx(fields []string) *ValidationError {
	normalized := strings.Join(fields, " ")
	if !gronx.IsValid(normalized) {
		return expressionError(fmt.Sprintf("%s is rejected by the gronx cron validator", quoteForMessage(normalized)))
	}
	return nil
}

// quoteForMessage quotes user input for an error message, cut short so a
// huge input cannot produce a huge message.
func quoteForMessage(s string) string {
	const maxRunes = 64
	if utf8.RuneCountInString(s) <= maxRunes {
		return fmt.Sprintf("%q", s)
	}
	runes := []rune(s)
	return fmt.Sprintf("%q…", string(runes[:maxRunes]))
}
