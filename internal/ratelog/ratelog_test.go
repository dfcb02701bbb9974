package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// One line per key per interval; the next one counts those left out; keys
// do not share their interval.
func TestOneLinePerKeyPerInterval(t *testing.T) {
	var out bytes.Buffer
	now := time.Unix(1_800_000_000, 0)
	l := &Limiter{Logger: slog.New(slog.NewTextHandler(&out, nil)), Every: 10 * time.Second, Now: func() time.Time { return now }}
	for range 100 {
		l.Log(slog.LevelWarn, "a", "flood", "session_id", "a")
	}
	l.Log(slog.LevelWarn, "b", "flood", "session_id", "b")
	assert.Equal(t, 2, strings.Count(out.String(), "msg=flood"))
	now = now.Add(10 * time.Second)
	l.Log(slog.LevelWarn, "a", "flood", "session_id", "a")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	assert.Len(t, lines, 3)
	assert.Contains(t, lines[2], "suppressed=99")
	assert.NotContains(t, lines[1], "suppressed")
}
