// Package listparams parses the query parameters every listing shares
// (limit, order, created_at bounds, booleans, repeated values) and renders a
// listing's filters canonically for its cursor scope. Errors name the
// parameter; the caller turns them into a 400. It must not know about any
// particular listing.
package listparams

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Limit reads limit, def when absent, and refuses values outside 1…max.
func Limit(v url.Values, def, max int) (int, error) {
	s := v.Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, fmt.Errorf("limit: must be an integer between 1 and %d, got %q", max, s)
	}
	return n, nil
}

// Bool reads a true/false parameter; nil when absent.
func Bool(v url.Values, name string) (*bool, error) {
	switch s := v.Get(name); s {
	case "":
		return nil, nil
	case "true":
		b := true
		return &b, nil
	case "false":
		b := false
		return &b, nil
	default:
		return nil, fmt.Errorf("%s: must be true or false, got %q", name, s)
	}
}

// Time reads an RFC 3339 timestamp, in UTC; zero when absent. Times before
// the epoch clamp to it (nothing was created earlier).
func Time(v url.Values, name string) (time.Time, error) {
	s := v.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: must be an RFC 3339 timestamp such as 2026-11-28T09:00:00Z, got %q", name, s)
	}
	if t.Unix() < 0 {
		t = time.Unix(0, 0)
	}
	return t.UTC(), nil
}

// TimeRange is the created_at[gt|gte|lt|lte] filter; zero bounds are open.
type TimeRange struct{ GT, GTE, LT, LTE time.Time }

// CreatedAt reads the four created_at bounds.
func CreatedAt(v url.Values) (TimeRange, error) {
	var r TimeRange
	for _, p := range []struct {
		op  string
		dst *time.Time
	}{{"gt", &r.GT}, {"gte", &r.GTE}, {"lt", &r.LT}, {"lte", &r.LTE}} {
		t, err := Time(v, "created_at["+p.op+"]")
		if err != nil {
			return r, err
		}
		*p.dst = t
	}
	return r, nil
}

// Contains reports whether t is within every bound set.
func (r TimeRange) Contains(t time.Time) bool {
	return (r.GT.IsZero() || t.After(r.GT)) && (r.GTE.IsZero() || !t.Before(r.GTE)) &&
		(r.LT.IsZero() || t.Before(r.LT)) && (r.LTE.IsZero() || !t.After(r.LTE))
}

// Order reads order (asc or desc), def when absent.
func Order(v url.Values, def string) (string, error) {
	switch s := v.Get("order"); s {
	case "":
		return def, nil
	case "asc", "desc":
		return s, nil
	default:
		return "", fmt.Errorf("order: must be asc or desc, got %q", s)
	}
}

// Array reads a repeated parameter sent as name[]=a&name[]=b (the SDKs'
// bracket format) or name=a&name=b.
func Array(v url.Values, name string) []string {
	return append(append([]string(nil), v[name+"[]"]...), v[name]...)
}

// Scope renders a listing's name and filters canonically (sorted, empty ones
// left out) for its cursor scope: a cursor then continues only the listing,
// with the same filters, it came from.
func Scope(name string, filters map[string]string) string {
	parts := make([]string, 0, len(filters))
	for k, v := range filters {
		if v != "" {
			parts = append(parts, url.QueryEscape(k)+"="+url.QueryEscape(v))
		}
	}
	sort.Strings(parts)
	return name + "?" + strings.Join(parts, "&")
}

// FormatTime renders a filter bound for Scope; "" for an open bound.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// Known refuses a query parameter that is not in allowed (beta, which the
// official clients add to every call, is always allowed): an unsupported
// filter such as created_at[gt] on a listing that only has gte/lte would
// otherwise be ignored and the listing would silently return everything.
func Known(v url.Values, allowed ...string) error {
	var unknown []string
	for name := range v {
		if name != "beta" && !slices.Contains(allowed, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	name := unknown[0]
	base, _, isOperator := strings.Cut(name, "[")
	var same []string
	for _, a := range allowed {
		if isOperator && strings.HasPrefix(a, base+"[") {
			same = append(same, a)
		}
	}
	if len(same) > 0 {
		return fmt.Errorf("%s: unsupported filter operator; this list supports %s", name, strings.Join(same, ", "))
	}
	return fmt.Errorf("%s: unknown query parameter; this list supports %s", name, strings.Join(allowed, ", "))
}
