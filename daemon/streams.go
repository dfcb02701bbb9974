package daemon

import (
	"context"
	"net/http"
	"strings"
	"sync"
)

// streamTracker lets shutdown end long-lived event streams (SSE, served by
// the local backend or proxied upstream), which would otherwise hold a
// graceful shutdown for its whole timeout.
type streamTracker struct {
	mu      sync.Mutex
	next    int
	cancels map[int]context.CancelFunc
}

func isEventStream(r *http.Request) bool {
	return strings.HasSuffix(r.URL.Path, "/stream") ||
		strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// wrap gives every event-stream request a context that endAll cancels.
func (t *streamTracker) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isEventStream(r) {
			h.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		t.mu.Lock()
		if t.cancels == nil {
			t.cancels = map[int]context.CancelFunc{}
		}
		id := t.next
		t.next++
		t.cancels[id] = cancel
		t.mu.Unlock()
		defer func() {
			t.mu.Lock()
			delete(t.cancels, id)
			t.mu.Unlock()
			cancel()
		}()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// endAll cancels every open event stream.
func (t *streamTracker) endAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, cancel := range t.cancels {
		cancel()
	}
}
