package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/internal/listparams"
	"github.com/sandbox0/sandbox0d/internal/wire"
)

const (
	streamBatchEvents  = 256
	streamBatchBytes   = 1 << 20
	streamKeepalive    = 15 * time.Second
	streamWriteTimeout = time.Minute
	lastEventIDHeader  = "Last-Event-ID"
)

type eventListResponse struct {
	Data     []json.RawMessage `json:"data"`
	NextPage *string           `json:"next_page"`
}

func (b *Backend) handleListEvents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := b.loadSession(w, id); !ok {
		return
	}
	q := r.URL.Query()
	limit, err := listparams.Limit(q, defaultEventsLimit, maxEventsLimit)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	order, err := listparams.Order(q, "asc")
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	var f eventFilter
	if f.created, err = listparams.CreatedAt(q); err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	for _, t := range listparams.Array(q, "types") {
		if !knownEventTypes[t] {
			wire.WriteError(w, http.StatusBadRequest, fmt.Sprintf("types: %q is not a session event type", t))
			return
		}
		if f.types == nil {
			f.types = map[string]bool{}
		}
		f.types[t] = true
	}
	scope := f.scope(id, order)
	cur, err := b.decodeCursor(scope, q.Get("page"), false)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	var after uint64
	if cur != nil {
		after = cur.Seq
	}
	events, more, err := b.store.listEvents(id, f, order == "desc", after, limit)
	if err != nil {
		b.log.Error("listing events", "session_id", id, "error", err)
		wire.WriteError(w, http.StatusInternalServerError, "listing events failed")
		return
	}
	resp := eventListResponse{Data: make([]json.RawMessage, 0, len(events))}
	for _, ev := range events {
		resp.Data = append(resp.Data, ev.JSON)
	}
	if more {
		resp.NextPage = b.encodeCursor(scope, pageCursor{Seq: events[len(events)-1].Seq})
	}
	writeJSON(w, http.StatusOK, resp)
}

type sendEventsResponse struct {
	Data []json.RawMessage `json:"data"`
}

// handleSendEvents records events sent to a session: user.message and
// system.message start (or queue) a turn, user.interrupt stops the running
// one. Other user events are refused: a local harness has no tools for the
// daemon to confirm or answer for.
func (b *Backend) handleSendEvents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := b.loadSession(w, id); !ok {
		return
	}
	var body struct {
		Events []json.RawMessage `json:"events"`
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBodyBytes))
	if err != nil {
		wire.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", maxRequestBodyBytes))
		return
	}
	if err := json.Unmarshal(data, &body); err != nil {
		wire.WriteError(w, http.StatusBadRequest, "the request body must be a JSON object with an events array: "+err.Error())
		return
	}
	if len(body.Events) == 0 {
		wire.WriteError(w, http.StatusBadRequest, "events: must contain at least one event")
		return
	}
	now := b.cfg.Now()
	events := make([]inputEvent, 0, len(body.Events))
	for i, raw := range body.Events {
		var head struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(raw, &head); err != nil || head.Type == "" {
			wire.WriteError(w, http.StatusBadRequest, fmt.Sprintf("events[%d]: must be an object with a type", i))
			return
		}
		switch head.Type {
		case eventUserInterrupt:
			events = append(events, inputEvent{json: newEvent(eventUserInterrupt, now, map[string]any{"session_thread_id": nil}), interrupt: true})
		case eventUserMessage, eventSystemMessage:
			if err := deployments.CheckSessionEvent(fmt.Sprintf("events[%d]", i), raw); err != nil {
				wire.WriteError(w, http.StatusBadRequest, err.Error())
				return
			}
			ev, _, err := initialEvent(raw, now)
			if err != nil {
				wire.WriteError(w, http.StatusBadRequest, fmt.Sprintf("events[%d] %v", i, err))
				return
			}
			events = append(events, inputEvent{json: ev})
		default:
			wire.WriteError(w, http.StatusBadRequest, fmt.Sprintf(
				"events[%d].type: %s cannot be sent to a local session; it accepts user.message, system.message and user.interrupt", i, head.Type))
			return
		}
	}
	// Below the disk reserve only interrupts are taken: they stop work.
	for _, ev := range events {
		if !ev.interrupt && b.diskFull(w, b.diskErr()) {
			return
		}
	}
	echo, err := b.sendEvents(id, events)
	switch {
	case errors.Is(err, errSessionNotFound):
		wire.WriteError(w, http.StatusNotFound, fmt.Sprintf("session %q was not found", id))
	case errors.Is(err, errTerminated):
		wire.WriteError(w, http.StatusConflict, fmt.Sprintf("session %s is terminated; it takes no more events", id))
	case errors.Is(err, errArchived):
		wire.WriteError(w, http.StatusConflict, fmt.Sprintf("session %s is archived; it takes no more events", id))
	case errors.Is(err, errBudgetReached):
		wire.WriteError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, errAgentMissing):
		wire.WriteError(w, http.StatusConflict, fmt.Sprintf("session %s cannot run another turn: %v", id, err))
	case errors.Is(err, errClosing):
		wire.WriteError(w, http.StatusServiceUnavailable, "the daemon is shutting down; send the events again once it is back")
	case b.diskFull(w, err):
	case err != nil:
		b.log.Error("sending events", "session_id", id, "error", err)
		wire.WriteError(w, http.StatusInternalServerError, "recording the events failed")
	default:
		writeJSON(w, http.StatusOK, sendEventsResponse{Data: echo})
	}
}

// handleStreamEvents follows a session's events as server-sent events, one
// `event: <type>` frame per event. Like the official stream it is a live
// tail: it delivers what is recorded after it opens, so the official
// pattern (open the stream, send a user.message, read until
// session.status_idle) sees its own turn and not an earlier turn's idle; a
// client that must not miss anything opens the stream, then lists the
// history and skips the ids it has seen. Last-Event-ID (an extension: the
// SSE ids are the session's event sequence numbers, from 1) resumes after
// that event instead, "0" replaying from the first. An idle session may
// take more messages, so the stream follows it until the session is
// terminated (and every event was sent) or deleted (a session.deleted frame
// ends it). Each follower reads bbolt in bounded batches from its own
// position, so a slow reader only slows its own writes and costs no memory
// elsewhere.
func (b *Backend) handleStreamEvents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rec, ok := b.loadSession(w, id)
	if !ok {
		return
	}
	// Read before the response starts: whatever is recorded once the client
	// has the response (and sends its message) is after this.
	after := rec.LastSeq
	if v := r.Header.Get(lastEventIDHeader); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == ^uint64(0) {
			wire.WriteError(w, http.StatusBadRequest, fmt.Sprintf("Last-Event-ID: %q is not an event sequence number of this stream", v))
			return
		}
		after = n
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	keepalive := time.NewTicker(streamKeepalive)
	defer keepalive.Stop()
	for {
		changed := b.watch(id)
		events, rec, err := b.store.eventsAfter(id, after, streamBatchEvents, streamBatchBytes)
		if errors.Is(err, errSessionNotFound) {
			ev := newEvent(eventSessionDeleted, b.cfg.Now(), nil)
			_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
			_, _ = fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", after+1, eventSessionDeleted, ev)
			_ = rc.Flush()
			return
		}
		if err != nil {
			b.log.Error("streaming events", "session_id", id, "error", err)
			return
		}
		if len(events) > 0 {
			for _, ev := range events {
				// A reader may be slow, not stuck: the deadline is per frame.
				_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
				if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Type, ev.JSON); err != nil {
					return
				}
				after = ev.Seq
			}
			if rc.Flush() != nil {
				return
			}
			continue // there may be more right away
		}
		if rec.Status == statusTerminated && after >= rec.LastSeq {
			return
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		case <-keepalive.C:
			_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}
