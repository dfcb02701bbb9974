package fakeupstream

import (
	"bufio"
	"fmt"
	"net/http"
)

// streamEvents serves GET /v1/sessions/{id}/events/stream: every event
// appended after the client connected, as `event: <type>` + `data: <json>`,
// flushed one by one, until the client leaves or the Server closes. Like the
// real stream it does not replay history (list the events for that).
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request, _ []byte) {
	id := r.PathValue("session_id")
	s.mu.Lock()
	sess, ok := s.state.sessions[id]
	var next int
	if ok {
		// Subscribe before the headers go out: a client that has the headers
		// sees every event emitted afterwards.
		next = len(sess.events)
		s.state.openStreams++
		s.notifyLocked()
	}
	s.mu.Unlock()
	if !ok {
		s.writeError(w, http.StatusNotFound, "", fmt.Sprintf("session %s not found", id))
		return
	}
	defer func() {
		s.mu.Lock()
		s.state.openStreams--
		s.notifyLocked()
		s.mu.Unlock()
	}()

	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	out := bufio.NewWriter(w)
	for {
		s.mu.Lock()
		pending := sess.events[next:]
		changed := sess.changed
		s.mu.Unlock()
		for _, ev := range pending {
			fmt.Fprintf(out, "event: %s\ndata: %s\n\n", ev.Type, ev.JSON)
		}
		next += len(pending)
		if len(pending) > 0 {
			if out.Flush() != nil || rc.Flush() != nil {
				return
			}
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		case <-s.closed:
			return
		}
	}
}
