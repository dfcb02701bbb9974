package console

import (
	"fmt"
	"strconv"
	"strings"
)

// cronWords says a five-field cron expression in words for the common
// shapes (every N minutes, hourly at a minute, daily/weekdays/some days at
// a time, monthly on a day); anything else is left to the expression shown
// next to it ("custom schedule"). It is a reading aid, not a parser: the
// schedule package decides when a deployment fires.
func cronWords(expr string) string {
	f := strings.Fields(expr)
	if len(f) != 5 {
		return "custom schedule"
	}
	min, hour, dom, mon, dow := f[0], f[1], f[2], f[3], f[4]
	if mon != "*" {
		return "custom schedule"
	}
	days := ""
	switch {
	case dom == "*" && dow == "*":
		days = "every day"
	case dom == "*":
		d, ok := weekdays(dow)
		if !ok {
			return "custom schedule"
		}
		days = d
	case dow == "*":
		if n, err := strconv.Atoi(dom); err == nil {
			days = "on day " + strconv.Itoa(n) + " of every month"
		} else {
			return "custom schedule"
		}
	default:
		return "custom schedule"
	}
	switch {
	case min == "*" && hour == "*":
		return "every minute, " + days
	case strings.HasPrefix(min, "*/") && hour == "*":
		return "every " + min[2:] + " minutes, " + days
	case isNumber(min) && hour == "*":
		return fmt.Sprintf("every hour at minute %s, %s", min, days)
	case isNumber(min) && strings.HasPrefix(hour, "*/"):
		return fmt.Sprintf("every %s hours at minute %s, %s", hour[2:], min, days)
	case isNumber(min) && isNumber(hour):
		h, _ := strconv.Atoi(hour)
		m, _ := strconv.Atoi(min)
		return fmt.Sprintf("at %02d:%02d, %s", h, m, days)
	case isNumber(min) && isNumberList(hour):
		m, _ := strconv.Atoi(min)
		var times []string
		for _, h := range strings.Split(hour, ",") {
			n, _ := strconv.Atoi(h)
			times = append(times, fmt.Sprintf("%02d:%02d", n, m))
		}
		return "at " + strings.Join(times, ", ") + ", " + days
	}
	return "custom schedule"
}

var dayNames = []string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}

func weekdays(dow string) (string, bool) {
	switch dow {
	case "1-5":
		return "on weekdays (Monday to Friday)", true
	case "0,6", "6,0", "6,7", "6-7":
		return "on weekends", true
	}
	var names []string
	for part := range strings.SplitSeq(dow, ",") {
		if a, b, ok := strings.Cut(part, "-"); ok {
			x, err1 := strconv.Atoi(a)
			y, err2 := strconv.Atoi(b)
			if err1 != nil || err2 != nil || x < 0 || y > 7 || x > y {
				return "", false
			}
			names = append(names, dayNames[x]+" to "+dayNames[y])
			continue
		}
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 || n > 7 {
			return "", false
		}
		names = append(names, dayNames[n])
	}
	return "on " + strings.Join(names, ", "), true
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil && !strings.HasPrefix(s, "+") && !strings.HasPrefix(s, "-")
}

func isNumberList(s string) bool {
	for p := range strings.SplitSeq(s, ",") {
		if !isNumber(p) {
			return false
		}
	}
	return true
}
