package cli

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestRelativeTime(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		offset time.Duration
		want   string
	}{
		{0, "now"},
		{499 * time.Millisecond, "now"},
		{999 * time.Millisecond, "in 1s"},
		{-(10*time.Minute - time.Microsecond), "10m ago"}, // sub-second jitter does not read as 9m59s
		{45 * time.Second, "in 45s"},
		{12*time.Minute + 30*time.Second, "in 12m30s"},
		{3*time.Hour + 12*time.Minute + 59*time.Second, "in 3h12m"},
		{3 * time.Hour, "in 3h"},
		{2*24*time.Hour + 4*time.Hour + 30*time.Minute, "in 2d4h"},
		{-5 * time.Minute, "5m ago"},
		{-(26*time.Hour + time.Second), "1d2h ago"},
		{-400 * 24 * time.Hour, "400d ago"},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, relativeTime(now.Add(tc.offset), now), "offset %v", tc.offset)
	}
}

func TestCellText(t *testing.T) {
	cases := []struct{ in, want string }{
		{"short", "short"},
		{"exactly-ten", "exactly-t…"},
		{"tab\tand\nnewline  runs", "tab and n…"},
		{"esc\x1b[31mred", "esc?[31mr…"},
		{"ünïcødé-ñame-long", "ünïcødé-ñ…"},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, cell(tc.in, 10), "%q", tc.in)
	}
}
