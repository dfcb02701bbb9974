package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/sandbox0/sandbox0d/internal/listparams"
	"github.com/sandbox0/sandbox0d/internal/wire"
)

// List limits of the two list endpoints.
const (
	defaultSessionsLimit = 20
	maxSessionsLimit     = 100
	defaultEventsLimit   = 100
	maxEventsLimit       = 1000
	maxRequestBodyBytes  = 1 << 20
)

var validStatuses = map[string]bool{
	statusRescheduling: true, statusRunning: true, statusIdle: true, statusTerminated: true,
}

// SessionHandler implements sessions.SessionRouter: it serves the
// /v1/sessions… routes of local sessions and the read-only agents,
// environments and vaults of the config, and answers anything else with a
// 404 error envelope. Authentication, the beta header and request ids are
// the API layer's.
func (b *Backend) SessionHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/sessions", b.handleListSessions)
	mux.HandleFunc("POST /v1/sessions", b.handleCreateSession)
	mux.HandleFunc("GET /v1/sessions/{id}", b.handleGetSession)
	mux.HandleFunc("POST /v1/sessions/{id}", b.handleUpdateSession)
	mux.HandleFunc("DELETE /v1/sessions/{id}", b.handleDeleteSession)
	mux.HandleFunc("POST /v1/sessions/{id}/archive", b.handleArchiveSession)
	mux.HandleFunc("GET /v1/sessions/{id}/events", b.handleListEvents)
	mux.HandleFunc("POST /v1/sessions/{id}/events", b.handleSendEvents)
	mux.HandleFunc("GET /v1/sessions/{id}/events/stream", refuseEventDeltas(b.handleStreamEvents))
	b.resourceRoutes(mux)
	mux.HandleFunc("/v1/sessions/{id}/threads", refuseThreads)
	mux.HandleFunc("/v1/sessions/{id}/threads/", refuseThreads)
	b.catalogRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { noRoute(w, r, "") })
	return mux
}

func noRoute(w http.ResponseWriter, r *http.Request, why string) {
	wire.WriteError(w, http.StatusNotFound,
		fmt.Sprintf("%s %s is not a route of the local session backend%s", r.Method, r.URL.Path, why))
}

// loadSession answers 404 (or 500) itself when the session cannot be read.
func (b *Backend) loadSession(w http.ResponseWriter, id string) (*sessionRecord, bool) {
	if !isSessionID(id) {
		wire.WriteError(w, http.StatusNotFound, fmt.Sprintf("session %q was not found", id))
		return nil, false
	}
	rec, err := b.store.get(id)
	if errors.Is(err, errSessionNotFound) {
		wire.WriteError(w, http.StatusNotFound, fmt.Sprintf("session %q was not found", id))
		return nil, false
	}
	if err != nil {
		b.log.Error("reading a session", "session_id", id, "error", err)
		wire.WriteError(w, http.StatusInternalServerError, "reading the session failed")
		return nil, false
	}
	return rec, true
}

func (b *Backend) handleGetSession(w http.ResponseWriter, r *http.Request) {
	if rec, ok := b.loadSession(w, r.PathValue("id")); ok {
		writeJSON(w, http.StatusOK, b.viewSession(rec, b.cfg.Now()))
	}
}

func (b *Backend) handleArchiveSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := b.loadSession(w, id); !ok {
		return
	}
	now := b.cfg.Now()
	rec, err := b.store.update(id, func(rec *sessionRecord) error {
		if !isFinished(rec.Status) {
			return errNotRunning
		}
		if rec.ArchivedAt == nil {
			rec.ArchivedAt, rec.UpdatedAt = &now, now
		}
		return nil
	})
	switch {
	case errors.Is(err, errNotRunning):
		wire.WriteError(w, http.StatusConflict, fmt.Sprintf(
			"session %s is running a turn; interrupt it (POST /v1/sessions/%s/events with user.interrupt) before archiving it", id, id))
	case errors.Is(err, errSessionNotFound):
		wire.WriteError(w, http.StatusNotFound, fmt.Sprintf("session %q was not found", id))
	case b.diskFull(w, err):
	case err != nil:
		b.log.Error("archiving a session", "session_id", id, "error", err)
		wire.WriteError(w, http.StatusInternalServerError, "archiving the session failed")
	default:
		writeJSON(w, http.StatusOK, b.viewSession(rec, now))
	}
}

// handleDeleteSession removes a session: a running turn is stopped first,
// then the workspace, then the record and events.
func (b *Backend) handleDeleteSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := b.loadSession(w, id); !ok {
		return
	}
	err := b.deleteSession(id)
	switch {
	case errors.Is(err, errSessionNotFound):
		wire.WriteError(w, http.StatusNotFound, fmt.Sprintf("session %q was not found", id))
		return
	case b.diskFull(w, err):
		return
	case err != nil:
		b.log.Error("deleting a session", "session_id", id, "error", err)
		wire.WriteError(w, http.StatusInternalServerError, "deleting the session failed")
		return
	}
	b.log.Info("session deleted", "session_id", id)
	writeJSON(w, http.StatusOK, deletedSessionView{ID: id, Type: "session_deleted"})
}

type sessionListResponse struct {
	Data     []sessionView `json:"data"`
	NextPage *string       `json:"next_page"`
	PrevPage *string       `json:"prev_page"`
}

func (b *Backend) handleListSessions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := listparams.Limit(q, defaultSessionsLimit, maxSessionsLimit)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	order, err := listparams.Order(q, "desc")
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	f, err := parseSessionFilter(q)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	scope := f.scope(order)
	cur, err := b.decodeCursor(scope, q.Get("page"), true)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	items, more, err := b.store.listSessions(f, order == "desc", cur, limit)
	if err != nil {
		b.log.Error("listing sessions", "error", err)
		wire.WriteError(w, http.StatusInternalServerError, "listing sessions failed")
		return
	}
	resp := sessionListResponse{Data: make([]sessionView, 0, len(items))}
	now := b.cfg.Now()
	for _, rec := range items {
		resp.Data = append(resp.Data, b.viewSession(rec, now))
	}
	next, prev := sessionPages(items, more, cur)
	if next != nil {
		resp.NextPage = b.encodeCursor(scope, *next)
	}
	if prev != nil {
		resp.PrevPage = b.encodeCursor(scope, *prev)
	}
	writeJSON(w, http.StatusOK, resp)
}

// sessionPages makes next_page and prev_page. A page read forward has a next
// page when more items followed; one read backward (from a prev_page) has a
// prev page when more items preceded. The other direction always exists
// when the page came from a cursor, even if the page is empty.
func sessionPages(items []*sessionRecord, more bool, cur *pageCursor) (next, prev *pageCursor) {
	backward := cur != nil && cur.Backward
	var first, last *sessionRecord
	if len(items) > 0 {
		first, last = items[0], items[len(items)-1]
	}
	at := func(rec *sessionRecord, backward bool) *pageCursor {
		c := sessionCursor(rec, backward)
		return &c
	}
	pivot := func(backward bool) *pageCursor {
		c := *cur
		c.Backward = backward
		return &c
	}
	switch {
	case !backward && more:
		next = at(last, false)
	case backward && last != nil:
		next = at(last, false)
	case backward:
		next = pivot(false)
	}
	switch {
	case backward && more:
		prev = at(first, true)
	case !backward && cur != nil && first != nil:
		prev = at(first, true)
	case !backward && cur != nil:
		prev = pivot(true)
	}
	return next, prev
}

func parseSessionFilter(q url.Values) (sessionFilter, error) {
	f := sessionFilter{
		deploymentID:  q.Get("deployment_id"),
		agentID:       q.Get("agent_id"),
		memoryStoreID: q.Get("memory_store_id"),
	}
	if v := q.Get("agent_version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return f, fmt.Errorf("agent_version: %q is not a positive integer", v)
		}
		f.agentVersion = n
	}
	for _, s := range listparams.Array(q, "statuses") {
		if !validStatuses[s] {
			return f, fmt.Errorf("statuses: %q is not one of rescheduling, running, idle, terminated", s)
		}
		if f.statuses == nil {
			f.statuses = map[string]bool{}
		}
		f.statuses[s] = true
	}
	include, err := listparams.Bool(q, "include_archived")
	if err != nil {
		return f, err
	}
	f.includeArchived = include != nil && *include
	f.created, err = listparams.CreatedAt(q)
	return f, err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
