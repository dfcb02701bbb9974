package local

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/internal/wire"
	"github.com/sandbox0/sandbox0d/sessions"
)

// handleCreateSession is POST /v1/sessions: the body is validated like a
// deployment's, resources are materialized by the session's first turn (or
// before it goes idle), and tokens are dropped once the clones are done.
func (b *Backend) handleCreateSession(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBodyBytes))
	if err != nil {
		wire.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", maxRequestBodyBytes))
		return
	}
	in, err := deployments.DecodeSessionCreate(data)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	agent, ok := b.agent(in.Agent.ID, in.Agent.Version)
	if !ok {
		wire.WriteError(w, http.StatusBadRequest, b.agentNotFound(in.Agent.ID, in.Agent.Version).Error())
		return
	}
	refs := sessions.References{Agent: sessions.AgentRef{ID: agent.ID, Version: agent.Version},
		EnvironmentID: in.EnvironmentID, VaultIDs: in.VaultIDs}
	for _, res := range in.Resources {
		if res.Type == "file" {
			refs.FileIDs = append(refs.FileIDs, res.FileID)
		}
	}
	if err := b.CheckReferences(r.Context(), refs); err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if b.diskFull(w, b.diskErr()) {
		return
	}
	now := b.cfg.Now()
	run, rec, events, err := b.prepareRun(sessions.CreateRequest{
		Agent:         refs.Agent,
		EnvironmentID: in.EnvironmentID,
		Resources:     in.Resources,
		VaultIDs:      in.VaultIDs,
		Metadata:      in.Metadata,
		InitialEvents: in.InitialEvents,
	}, now)
	if err == nil {
		rec.Title, rec.Budget = in.Title, in.Budget
		run.reservation = reservationOf(r.Context())
		err = b.admit(run, rec, events)
	}
	var re *sessions.RunError
	switch {
	case b.diskFull(w, err):
		return
	case errors.As(err, &re) && re.Type == sessions.ErrUnknown:
		b.log.Error("creating a session", "error", err)
		wire.WriteError(w, http.StatusInternalServerError, "creating the session failed: "+re.Message)
		return
	case errors.As(err, &re):
		wire.WriteError(w, http.StatusBadRequest, re.Message)
		return
	case err != nil:
		wire.WriteError(w, http.StatusInternalServerError, "creating the session failed")
		return
	}
	b.log.Info("session created", "session_id", run.id, "agent_id", agent.ID,
		"agent_version", agent.Version, "status", rec.Status)
	stored, err := b.store.get(run.id)
	if err != nil {
		stored = rec
	}
	writeJSON(w, http.StatusOK, b.viewSession(stored, b.cfg.Now()))
}

// handleUpdateSession is POST /v1/sessions/{id}: title and metadata
// (session_update.go applies them).
func (b *Backend) handleUpdateSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := b.loadSession(w, id); !ok {
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBodyBytes))
	if err != nil {
		wire.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", maxRequestBodyBytes))
		return
	}
	up, err := deployments.DecodeSessionUpdate(data)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	now := b.cfg.Now()
	rec, err := b.updateSession(id, up, now)
	switch {
	case errors.Is(err, errSessionNotFound):
		wire.WriteError(w, http.StatusNotFound, fmt.Sprintf("session %q was not found", id))
	case errors.As(err, new(*badUpdateError)):
		wire.WriteError(w, http.StatusBadRequest, err.Error())
	case b.diskFull(w, err):
	case err != nil:
		b.log.Error("updating a session", "session_id", id, "err", err)
		wire.WriteError(w, http.StatusInternalServerError, "updating the session failed")
	default:
		b.notify(id)
		writeJSON(w, http.StatusOK, b.viewSession(rec, now))
	}
}

// badUpdateError is an update the request itself makes invalid (a 400).
type badUpdateError struct{ msg string }

func (e *badUpdateError) Error() string { return e.msg }
