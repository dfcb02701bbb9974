package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

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

func (b *Backend) handleListEvents(w http.ResponseWriter, r *http.Request, id string) {
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
		b.log.Error("listing events", "session_id", id, "err", err)
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

// handleSendEvents accepts user.interrupt only: a local harness reads its
// input once, at start, so there is nothing to deliver other events to.
func (b *Backend) handleSendEvents(w http.ResponseWriter, r *http.Request, id string) {
	rec, ok := b.loadSession(w, id)
	if !ok {
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
	for i, raw := range body.Events {
		var ev struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil || ev.Type == "" {
			wire.WriteError(w, http.StatusBadRequest, fmt.Sprintf("events[%d]: must be an object with a type", i))
			return
		}
		if ev.Type != eventUserInterrupt {
			wire.WriteError(w, http.StatusBadRequest, fmt.Sprintf(
				"events[%d]: %s cannot be sent to a local session; its harness reads its input once, at start, so only user.interrupt is accepted", i, ev.Type))
			return
		}
	}
	ev, err := b.interrupt(id)
	switch {
	case errors.Is(err, errNotRunning):
		wire.WriteError(w, http.StatusConflict, fmt.Sprintf("session %s has already ended (%s); there is nothing to interrupt", id, rec.Status))
	case err != nil:
		b.log.Error("interrupting a session", "session_id", id, "err", err)
		wire.WriteError(w, http.StatusInternalServerError, "interrupting the session failed")
	default:
		writeJSON(w, http.StatusOK, sendEventsResponse{Data: []json.RawMessage{ev}})
	}
}

// handleStreamEvents replays a session's events and follows new ones as
// server-sent events, one `event: <type>` frame per event, until the
// session has ended and every event was sent. Each follower reads bbolt in
// bounded batches from its own position, so a slow reader only slows its
// own writes and costs no memory elsewhere. Last-Event-ID resumes a stream.
func (b *Backend) handleStreamEvents(w http.ResponseWriter, r *http.Request, id string) {
	if _, ok := b.loadSession(w, id); !ok {
		return
	}
	var after uint64
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
		changed, live := b.watch(id)
		events, rec, err := b.store.eventsAfter(id, after, streamBatchEvents, streamBatchBytes)
		if err != nil {
			if !errors.Is(err, errSessionNotFound) {
				b.log.Error("streaming events", "session_id", id, "err", err)
			}
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
		if isFinished(rec.Status) && after >= rec.LastSeq || !live {
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
