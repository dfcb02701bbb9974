package console

import (
	"fmt"
	"time"

	"github.com/sandbox0/sandbox0d/schedule/tzdb"
)

// timeView is an instant as the console shows it: in a named zone (the
// deployment's, or UTC), with the UTC instant for the viewer's browser to
// show in its own zone, and relative to the page's now. The zone is always
// written out: a time without one is a guess.
type timeView struct {
	ISO    string // RFC 3339 UTC, for <time datetime> and the script
	InZone string // "2026-12-08 09:00 CET"
	Zone   string // the IANA name ("Europe/Berlin")
	UTC    string // "2026-12-08 08:00 UTC"
	Rel    string // "in 3 h 20 min", "5 min ago"
}

func (t *timeView) SameAsUTC() bool { return t.Zone == "UTC" || t.Zone == "Etc/UTC" }

// zoneOf loads a zone from the embedded database (as the scheduler does);
// an unknown name falls back to UTC, named as such.
func zoneOf(name string) (*time.Location, string) {
	if name == "" {
		return time.UTC, "UTC"
	}
	loc, err := tzdb.Load(name)
	if err != nil {
		return time.UTC, "UTC"
	}
	return loc, name
}

func newTime(t time.Time, zone string, now time.Time) *timeView {
	if t.IsZero() {
		return nil
	}
	loc, name := zoneOf(zone)
	return &timeView{
		ISO:    t.UTC().Format(time.RFC3339),
		InZone: t.In(loc).Format("Mon 2006-01-02 15:04 MST"),
		Zone:   name,
		UTC:    t.UTC().Format("2006-01-02 15:04:05 UTC"),
		Rel:    relative(t, now),
	}
}

func timePtr(t *time.Time, zone string, now time.Time) *timeView {
	if t == nil {
		return nil
	}
	return newTime(*t, zone, now)
}

// relative says how far t is from now in at most two units.
func relative(t, now time.Time) string {
	d := t.Sub(now)
	future := d > 0
	if !future {
		d = -d
	}
	var s string
	switch {
	case d < 45*time.Second:
		return "just now"
	case d < time.Hour:
		s = fmt.Sprintf("%d min", int((d+30*time.Second)/time.Minute))
	case d < 24*time.Hour:
		h := int(d / time.Hour)
		m := int((d % time.Hour) / time.Minute)
		s = fmt.Sprintf("%d h", h)
		if m > 0 {
			s += fmt.Sprintf(" %d min", m)
		}
	default:
		days := int(d / (24 * time.Hour))
		h := int((d % (24 * time.Hour)) / time.Hour)
		s = fmt.Sprintf("%d d", days)
		if h > 0 && days < 10 {
			s += fmt.Sprintf(" %d h", h)
		}
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}
