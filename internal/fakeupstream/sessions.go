package fakeupstream

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"
)

// Session is a created session as the fake stores it. Resources are kept
// as received, tokens included, so tests can assert what reached the
// upstream.
type Session struct {
	ID            string
	AgentID       string
	AgentVersion  int64
	EnvironmentID string
	Title         string
	Resources     []Resource
	VaultIDs      []string
	Metadata      map[string]string
	// Budget is the budget the session was created with (compacted JSON).
	Budget         json.RawMessage
	IdempotencyKey string
	ArchivedAt     *time.Time
	CreatedAt      time.Time
}

// Event is a stored session event.
type Event struct {
	ID   string
	Type string
	// JSON is the event as the fake serves it (with id and processed_at).
	JSON json.RawMessage
}

type session struct {
	Session
	wire    []byte // the rendered BetaManagedAgentsSession
	events  []Event
	changed chan struct{} // closed and replaced when events are appended
}

type sessionWire struct {
	Type               string            `json:"type"`
	ID                 string            `json:"id"`
	Agent              agentSnapshotWire `json:"agent"`
	ArchivedAt         *string           `json:"archived_at"`
	Budget             json.RawMessage   `json:"budget"`
	CreatedAt          string            `json:"created_at"`
	UpdatedAt          string            `json:"updated_at"`
	EnvironmentID      string            `json:"environment_id"`
	Metadata           map[string]string `json:"metadata"`
	OutcomeEvaluations []any             `json:"outcome_evaluations"`
	Resources          []map[string]any  `json:"resources"`
	Stats              map[string]any    `json:"stats"`
	Status             string            `json:"status"`
	Title              string            `json:"title"`
	Usage              map[string]any    `json:"usage"`
	VaultIDs           []string          `json:"vault_ids"`
	DeploymentID       *string           `json:"deployment_id"`
}

func (s *Server) createSession(w http.ResponseWriter, r *http.Request, body []byte) {
	p, err := parseCreateSession(body, s.opts.requiredMetadata)
	if err != nil {
		s.reject(w, r, http.StatusBadRequest, err.Error())
		return
	}
	key := r.Header.Get(IdempotencyKeyHeader)
	s.mu.Lock()
	if answer, ok := s.replayLocked(r.URL.Path, key); ok {
		s.mu.Unlock()
		writeRaw(w, answer.status, answer.body)
		return
	}
	if status, msg := s.checkSessionRefsLocked(p); status != 0 {
		s.mu.Unlock()
		s.writeError(w, status, "", msg)
		return
	}
	sess := s.newSessionLocked(p, key)
	s.storeAnswerLocked(r.URL.Path, key, storedAnswer{status: http.StatusOK, body: sess.wire})
	s.mu.Unlock()
	writeRaw(w, http.StatusOK, sess.wire)
}

func (s *Server) replayLocked(path, key string) (storedAnswer, bool) {
	if !s.opts.idempotency || key == "" {
		return storedAnswer{}, false
	}
	a, ok := s.state.idempotent[path+" "+key]
	return a, ok
}

func (s *Server) storeAnswerLocked(path, key string, a storedAnswer) {
	if s.opts.idempotency && key != "" {
		s.state.idempotent[path+" "+key] = a
	}
}

// checkSessionRefsLocked answers what a real upstream answers for ids that
// do not exist or are archived; each message names the id.
func (s *Server) checkSessionRefsLocked(p parsedSession) (int, string) {
	a, ok := s.state.agents[p.agentID]
	switch {
	case !ok:
		return http.StatusNotFound, fmt.Sprintf("agent %s not found", p.agentID)
	case p.agentVersion > a.latest:
		return http.StatusNotFound, fmt.Sprintf("agent %s version %d not found", p.agentID, p.agentVersion)
	case a.archivedAt != nil:
		return http.StatusBadRequest, fmt.Sprintf("agent %s is archived and cannot start new sessions", p.agentID)
	}
	if status, msg := checkObject(s.state.environments, "environment", p.environmentID); status != 0 {
		return status, msg
	}
	for _, id := range p.vaultIDs {
		if status, msg := checkObject(s.state.vaults, "vault", id); status != 0 {
			return status, msg
		}
	}
	for _, res := range p.resources {
		var status int
		var msg string
		switch res.Type {
		case "file":
			status, msg = checkObject(s.state.files, "file", res.FileID)
		case "memory_store":
			status, msg = checkObject(s.state.memoryStores, "memory store", res.MemoryStoreID)
		}
		if status != 0 {
			return status, msg
		}
	}
	return 0, ""
}

func checkObject(m map[string]*object, kind, id string) (int, string) {
	o, ok := m[id]
	switch {
	case !ok:
		return http.StatusNotFound, fmt.Sprintf("%s %s not found", kind, id)
	case o.archivedAt != nil:
		return http.StatusBadRequest, fmt.Sprintf("%s %s is archived", kind, id)
	}
	return 0, ""
}

func (s *Server) newSessionLocked(p parsedSession, key string) *session {
	created := now()
	sess := &session{
		Session: Session{
			ID:             s.nextID("sesn"),
			AgentID:        p.agentID,
			AgentVersion:   p.agentVersion,
			EnvironmentID:  p.environmentID,
			Title:          p.title,
			Resources:      p.resources,
			VaultIDs:       p.vaultIDs,
			Metadata:       p.metadata,
			Budget:         p.budget,
			IdempotencyKey: key,
			CreatedAt:      created,
		},
		changed: make(chan struct{}),
	}
	vaults := p.vaultIDs
	if vaults == nil {
		vaults = []string{}
	}
	wire := sessionWire{
		Type:               "session",
		ID:                 sess.ID,
		Agent:              agentSnapshot(p.agentID, p.agentVersion),
		CreatedAt:          timestamp(created),
		UpdatedAt:          timestamp(created),
		EnvironmentID:      p.environmentID,
		Metadata:           p.metadata,
		Budget:             p.budget,
		OutcomeEvaluations: []any{},
		Resources:          make([]map[string]any, 0, len(p.resources)),
		Stats:              map[string]any{"active_seconds": 0, "duration_seconds": 0},
		Status:             "idle",
		Title:              p.title,
		Usage:              map[string]any{"input_tokens": 0, "output_tokens": 0},
		VaultIDs:           vaults,
	}
	for _, res := range p.resources {
		wire.Resources = append(wire.Resources, s.resourceWire(res, created))
	}
	sess.wire, _ = json.Marshal(wire)
	s.state.sessions[sess.ID] = sess
	s.state.sessionOrder = append(s.state.sessionOrder, sess)
	s.state.sessionsCreated++
	return sess
}

// resourceWire renders a resource the way a session echoes it: never with
// its authorization_token.
func (s *Server) resourceWire(res Resource, created time.Time) map[string]any {
	ts := timestamp(created)
	switch res.Type {
	case "github_repository":
		mount := res.MountPath
		if mount == "" {
			mount = "/workspace/" + strings.TrimSuffix(path.Base(res.URL), ".git")
		}
		var checkout any
		if res.Checkout != nil {
			checkout = res.Checkout
		}
		return map[string]any{"type": res.Type, "id": s.nextID("sesrsc"), "url": res.URL, "mount_path": mount,
			"checkout": checkout, "created_at": ts, "updated_at": ts}
	case "file":
		mount := res.MountPath
		if mount == "" {
			mount = "/mnt/session/uploads/" + res.FileID
		}
		return map[string]any{"type": res.Type, "id": s.nextID("sesrsc"), "file_id": res.FileID, "mount_path": mount,
			"created_at": ts, "updated_at": ts}
	default:
		var access, instructions any
		if res.Access != "" {
			access = res.Access
		}
		if res.Instructions != "" {
			instructions = res.Instructions
		}
		return map[string]any{"type": res.Type, "memory_store_id": res.MemoryStoreID, "access": access,
			"instructions": instructions, "mount_path": "/mnt/memory/" + res.MemoryStoreID,
			"name": res.MemoryStoreID, "description": ""}
	}
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request, _ []byte) {
	id := r.PathValue("session_id")
	s.mu.Lock()
	sess, ok := s.state.sessions[id]
	s.mu.Unlock()
	if !ok {
		s.writeError(w, http.StatusNotFound, "", fmt.Sprintf("session %s not found", id))
		return
	}
	writeRaw(w, http.StatusOK, sess.wire)
}

// archiveSession archives a session (POST /v1/sessions/{id}/archive) and
// answers the archived session; archiving twice keeps the first time.
func (s *Server) archiveSession(w http.ResponseWriter, r *http.Request, _ []byte) {
	id := r.PathValue("session_id")
	s.mu.Lock()
	sess, ok := s.state.sessions[id]
	var out []byte
	if ok {
		if sess.ArchivedAt == nil {
			at := now()
			sess.ArchivedAt = &at
			var wire map[string]json.RawMessage
			_ = json.Unmarshal(sess.wire, &wire)
			wire["archived_at"], _ = json.Marshal(timestamp(at))
			sess.wire, _ = json.Marshal(wire)
		}
		out = sess.wire
	}
	s.mu.Unlock()
	if !ok {
		s.writeError(w, http.StatusNotFound, "", fmt.Sprintf("session %s not found", id))
		return
	}
	writeRaw(w, http.StatusOK, out)
}

// Session returns a created session.
func (s *Server) Session(id string) (Session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.state.sessions[id]
	if !ok {
		return Session{}, false
	}
	return sess.Session, true
}

// Sessions returns every created session in creation order.
func (s *Server) Sessions() []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Session, len(s.state.sessionOrder))
	for i, sess := range s.state.sessionOrder {
		out[i] = sess.Session
	}
	return out
}

// Events returns a session's events in order (nil for an unknown session).
func (s *Server) Events(sessionID string) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess, ok := s.state.sessions[sessionID]; ok {
		return slices.Clone(sess.events)
	}
	return nil
}

func (s *Server) sendEvents(w http.ResponseWriter, r *http.Request, body []byte) {
	events, err := parseSendEvents(body)
	if err != nil {
		s.reject(w, r, http.StatusBadRequest, err.Error())
		return
	}
	id := r.PathValue("session_id")
	key := r.Header.Get(IdempotencyKeyHeader)
	s.mu.Lock()
	if answer, ok := s.replayLocked(r.URL.Path, key); ok {
		s.mu.Unlock()
		writeRaw(w, answer.status, answer.body)
		return
	}
	sess, ok := s.state.sessions[id]
	if !ok {
		s.mu.Unlock()
		s.writeError(w, http.StatusNotFound, "", fmt.Sprintf("session %s not found", id))
		return
	}
	stored := make([]json.RawMessage, 0, len(events))
	for _, raw := range events {
		ev, err := s.appendEventLocked(sess, raw)
		if err != nil {
			s.mu.Unlock()
			s.reject(w, r, http.StatusBadRequest, err.Error())
			return
		}
		stored = append(stored, ev.JSON)
	}
	answer, _ := json.Marshal(map[string]any{"data": stored})
	s.storeAnswerLocked(r.URL.Path, key, storedAnswer{status: http.StatusOK, body: answer})
	s.mu.Unlock()
	writeRaw(w, http.StatusOK, answer)
}

// EmitEvent appends an event to a session as if the upstream produced it
// (an agent.message, a session.status_idle …) and pushes it to open
// streams. The event needs a type; id and processed_at are added when
// missing.
func (s *Server) EmitEvent(sessionID string, event any) (Event, error) {
	raw, err := json.Marshal(event)
	if err != nil {
		return Event{}, fmt.Errorf("fakeupstream: encode event: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.state.sessions[sessionID]
	if !ok {
		return Event{}, fmt.Errorf("fakeupstream: session %s not found", sessionID)
	}
	return s.appendEventLocked(sess, raw)
}

func (s *Server) appendEventLocked(sess *session, raw json.RawMessage) (Event, error) {
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return Event{}, fmt.Errorf("event must be a JSON object")
	}
	typ, _ := obj["type"].(string)
	if typ == "" {
		return Event{}, fmt.Errorf("event type is required")
	}
	if _, ok := obj["id"]; !ok {
		obj["id"] = s.nextID("sevt")
	}
	if _, ok := obj["processed_at"]; !ok {
		obj["processed_at"] = timestamp(now())
	}
	id, _ := obj["id"].(string)
	full, err := json.Marshal(obj)
	if err != nil {
		return Event{}, fmt.Errorf("encode event: %w", err)
	}
	ev := Event{ID: id, Type: typ, JSON: full}
	sess.events = append(sess.events, ev)
	close(sess.changed)
	sess.changed = make(chan struct{})
	return ev, nil
}
