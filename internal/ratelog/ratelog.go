// Package ratelog bounds how often a repeated log line is written. A hostile
// or broken client can cause the same WARN thousands of times a second
// (denied egress, accept failures at the open-file limit); written as is,
// the log itself becomes the load. One line per key per interval is
// written, and the next one carries how many were suppressed meanwhile, so
// nothing is hidden, only summed.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Limiter writes at most one line per key per Every.
type Limiter struct {
	Logger *slog.Logger
	Every  time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu   sync.Mutex
	keys map[string]*entry
}

type entry struct {
	last       time.Time
	suppressed int
}

// maxKeys bounds the memory of the limiter; past it, keys whose interval
// has passed are forgotten (they would log at once anyway).
const maxKeys = 4096

// Log writes the line at level unless a line with the same key was written
// less than Every ago; then it only counts it. A written line has a
// "suppressed" attribute when lines were counted since the previous one.
func (l *Limiter) Log(level slog.Level, key, msg string, attrs ...any) {
	if !l.Logger.Enabled(context.Background(), level) {
		return
	}
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	t := now()
	l.mu.Lock()
	if l.keys == nil {
		l.keys = map[string]*entry{}
	}
	e, ok := l.keys[key]
	if ok && t.Sub(e.last) < l.Every {
		e.suppressed++
		l.mu.Unlock()
		return
	}
	if !ok {
		if len(l.keys) >= maxKeys {
			l.forgetLocked(t)
		}
		e = &entry{}
		l.keys[key] = e
	}
	suppressed := e.suppressed
	e.last, e.suppressed = t, 0
	l.mu.Unlock()
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	l.Logger.Log(context.Background(), level, msg, attrs...)
}

// forgetLocked drops keys whose interval has passed. A dropped key's
// suppressed count is lost only if it had one, which means it logged
// within Every; those stay.
func (l *Limiter) forgetLocked(t time.Time) {
	for k, e := range l.keys {
		if t.Sub(e.last) >= l.Every && e.suppressed == 0 {
			delete(l.keys, k)
		}
	}
}
