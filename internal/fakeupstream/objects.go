package fakeupstream

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"time"
)

// Wire shapes of the objects the fake serves, as the official SDK decodes
// them (BetaManagedAgentsAgent, BetaEnvironment, BetaManagedAgentsVault,
// BetaFileMetadata).

type modelWire struct {
	ID string `json:"id"`
}

type identityWire struct {
	Type string `json:"type"`
}

// agentSnapshotWire is the part of an agent a session snapshots.
type agentSnapshotWire struct {
	Type              string       `json:"type"`
	ID                string       `json:"id"`
	Version           int64        `json:"version"`
	Name              string       `json:"name"`
	Description       string       `json:"description"`
	System            string       `json:"system"`
	Model             modelWire    `json:"model"`
	Tools             []any        `json:"tools"`
	Skills            []any        `json:"skills"`
	MCPServers        []any        `json:"mcp_servers"`
	ExecutionIdentity identityWire `json:"execution_identity"`
	Multiagent        any          `json:"multiagent"`
}

type agentWire struct {
	agentSnapshotWire
	Metadata   map[string]string `json:"metadata"`
	ArchivedAt *string           `json:"archived_at"`
	CreatedAt  string            `json:"created_at"`
	UpdatedAt  string            `json:"updated_at"`
}

func agentSnapshot(id string, version int64) agentSnapshotWire {
	return agentSnapshotWire{
		Type:              "agent",
		ID:                id,
		Version:           version,
		Name:              id,
		Model:             modelWire{ID: "claude-sonnet-5-5"},
		Tools:             []any{},
		Skills:            []any{},
		MCPServers:        []any{},
		ExecutionIdentity: identityWire{Type: "service_account"},
	}
}

func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func timestampOrNull(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := timestamp(*t)
	return &s
}

func (s *Server) getAgent(w http.ResponseWriter, r *http.Request, _ []byte) {
	id := r.PathValue("agent_id")
	var version int64
	if v := r.URL.Query().Get("version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			s.reject(w, r, http.StatusBadRequest, fmt.Sprintf("version must be an integer >= 1 (got %q)", v))
			return
		}
		version = n
	}
	s.mu.Lock()
	a, ok := s.state.agents[id]
	var out agentWire
	if ok {
		// Like the real API, a version asked for by number is that version's
		// snapshot, which does not say whether the agent was archived since:
		// only the agent itself (no version) does.
		archivedAt := a.archivedAt
		if version == 0 {
			version = a.latest
		} else {
			archivedAt = nil
		}
		out = agentWire{
			agentSnapshotWire: agentSnapshot(a.id, version),
			Metadata:          map[string]string{},
			ArchivedAt:        timestampOrNull(archivedAt),
			CreatedAt:         timestamp(a.createdAt),
			UpdatedAt:         timestamp(a.createdAt),
		}
	}
	s.mu.Unlock()
	switch {
	case !ok:
		s.writeError(w, http.StatusNotFound, "", fmt.Sprintf("agent %s not found", id))
	case version > a.latest:
		s.writeError(w, http.StatusNotFound, "", fmt.Sprintf("agent %s version %d not found", id, version))
	default:
		writeJSON(w, http.StatusOK, out)
	}
}

type environmentWire struct {
	Type        string            `json:"type"`
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Description *string           `json:"description"`
	Config      map[string]string `json:"config"`
	Metadata    map[string]string `json:"metadata"`
	Scope       string            `json:"scope"`
	ArchivedAt  *string           `json:"archived_at"`
	CreatedAt   string            `json:"created_at"`
	UpdatedAt   string            `json:"updated_at"`
}

func (s *Server) getEnvironment(w http.ResponseWriter, r *http.Request, _ []byte) {
	s.getObject(w, r, s.state.environments, "environment", r.PathValue("environment_id"), func(o *object) any {
		return environmentWire{
			Type: "environment", ID: o.id, Name: o.id,
			Config:     map[string]string{"type": "cloud"},
			Metadata:   map[string]string{},
			Scope:      "organization",
			ArchivedAt: timestampOrNull(o.archivedAt),
			CreatedAt:  timestamp(o.createdAt), UpdatedAt: timestamp(o.createdAt),
		}
	})
}

type vaultWire struct {
	Type        string            `json:"type"`
	ID          string            `json:"id"`
	DisplayName string            `json:"display_name"`
	Metadata    map[string]string `json:"metadata"`
	ArchivedAt  *string           `json:"archived_at"`
	CreatedAt   string            `json:"created_at"`
	UpdatedAt   string            `json:"updated_at"`
}

func (s *Server) getVault(w http.ResponseWriter, r *http.Request, _ []byte) {
	s.getObject(w, r, s.state.vaults, "vault", r.PathValue("vault_id"), func(o *object) any {
		return vaultWire{
			Type: "vault", ID: o.id, DisplayName: o.id, Metadata: map[string]string{},
			ArchivedAt: timestampOrNull(o.archivedAt),
			CreatedAt:  timestamp(o.createdAt), UpdatedAt: timestamp(o.createdAt),
		}
	})
}

type fileWire struct {
	Type         string `json:"type"`
	ID           string `json:"id"`
	Filename     string `json:"filename"`
	MimeType     string `json:"mime_type"`
	SizeBytes    int64  `json:"size_bytes"`
	Downloadable bool   `json:"downloadable"`
	CreatedAt    string `json:"created_at"`
}

func (s *Server) getFile(w http.ResponseWriter, r *http.Request, _ []byte) {
	s.getObject(w, r, s.state.files, "file", r.PathValue("file_id"), func(o *object) any {
		name := o.filename
		if name == "" {
			name = o.id + ".txt"
		}
		return fileWire{Type: "file", ID: o.id, Filename: name, MimeType: "text/plain", SizeBytes: o.size, CreatedAt: timestamp(o.createdAt)}
	})
}

// uploadFile stores a multipart upload's "file" part (POST /v1/files).
func (s *Server) uploadFile(w http.ResponseWriter, r *http.Request, body []byte) {
	_, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		part, err := mr.NextPart()
		if err != nil {
			s.reject(w, r, http.StatusBadRequest, "the multipart body has no \"file\" part")
			return
		}
		if part.FormName() != "file" {
			continue
		}
		n, err := io.Copy(io.Discard, part)
		if err != nil {
			s.reject(w, r, http.StatusBadRequest, "the file part could not be read: "+err.Error())
			return
		}
		s.mu.Lock()
		o := &object{id: s.nextID("file"), createdAt: now(), filename: part.FileName(), size: n}
		s.state.files[o.id] = o
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, fileWire{Type: "file", ID: o.id, Filename: o.filename, MimeType: "application/octet-stream",
			SizeBytes: n, Downloadable: false, CreatedAt: timestamp(o.createdAt)})
		return
	}
}

type modelInfoWire struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	CreatedAt   string `json:"created_at"`
}

// listModels serves GET /v1/models, which needs no beta.
func (s *Server) listModels(w http.ResponseWriter, _ *http.Request, _ []byte) {
	m := modelInfoWire{Type: "model", ID: "claude-sonnet-5-5", DisplayName: "Claude Sonnet 5.5", CreatedAt: "2025-09-29T00:00:00Z"}
	writeJSON(w, http.StatusOK, map[string]any{"data": []any{m}, "has_more": false, "first_id": m.ID, "last_id": m.ID})
}

func (s *Server) getObject(w http.ResponseWriter, _ *http.Request, m map[string]*object, kind, id string, render func(*object) any) {
	s.mu.Lock()
	o, ok := m[id]
	var out any
	if ok {
		out = render(o)
	}
	s.mu.Unlock()
	if !ok {
		s.writeError(w, http.StatusNotFound, "", fmt.Sprintf("%s %s not found", kind, id))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

type memoryStoreWire struct {
	Type        string            `json:"type"`
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Metadata    map[string]string `json:"metadata"`
	ArchivedAt  *string           `json:"archived_at"`
	CreatedAt   string            `json:"created_at"`
	UpdatedAt   string            `json:"updated_at"`
}

func (s *Server) getMemoryStore(w http.ResponseWriter, r *http.Request, _ []byte) {
	s.getObject(w, r, s.state.memoryStores, "memory store", r.PathValue("memory_store_id"), func(o *object) any {
		return memoryStoreWire{
			Type: "memory_store", ID: o.id, Name: o.id, Metadata: map[string]string{},
			ArchivedAt: timestampOrNull(o.archivedAt),
			CreatedAt:  timestamp(o.createdAt), UpdatedAt: timestamp(o.createdAt),
		}
	})
}
