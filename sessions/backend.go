// Package sessions defines the contract between the deployment run pipeline and
// whatever actually creates agent sessions (a remote Managed Agents API, or
// harness processes on this machine). It owns the Backend interface, the
// snapshot a backend receives, and the run error taxonomy. It must not know
// about storage, HTTP routing of the Deployments API, or scheduling.
package sessions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// AgentRef is an agent pinned to a concrete version.
type AgentRef struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
}

// Checkout selects what a repository resource is checked out at.
type Checkout struct {
	Type string `json:"type"`           // "branch" or "commit"
	Name string `json:"name,omitempty"` // branch name
	SHA  string `json:"sha,omitempty"`  // commit sha
}

// Resource is one resource attached to a session, in wire shape. The
// AuthorizationToken is the decrypted secret: it exists only in memory, only
// for the duration of a session creation, and must never be logged.
type Resource struct {
	Type string `json:"type"` // github_repository | file | memory_store

	// github_repository
	URL                string    `json:"url,omitempty"`
	Checkout           *Checkout `json:"checkout,omitempty"`
	AuthorizationToken string    `json:"authorization_token,omitempty"`

	// github_repository and file
	MountPath string `json:"mount_path,omitempty"`

	// file
	FileID string `json:"file_id,omitempty"`

	// memory_store
	MemoryStoreID string `json:"memory_store_id,omitempty"`
	Access        string `json:"access,omitempty"`
	Instructions  string `json:"instructions,omitempty"`
}

// String hides the token so a Resource can never leak it through %v or a log.
func (r Resource) String() string {
	tok := ""
	if r.AuthorizationToken != "" {
		tok = " token=<redacted>"
	}
	return fmt.Sprintf("{%s %s%s%s%s}", r.Type, r.URL, r.FileID, r.MemoryStoreID, tok)
}

// CreateRequest is everything a backend needs to create one session for one
// deployment run: a snapshot of the deployment taken at fire time.
type CreateRequest struct {
	DeploymentID  string
	RunID         string
	Agent         AgentRef
	EnvironmentID string
	Resources     []Resource
	VaultIDs      []string
	Metadata      map[string]string
	// InitialEvents are the deployment's stored events in wire JSON
	// (user.message / system.message objects), delivered in order.
	InitialEvents []json.RawMessage
	// Budget is the deployment's budget as stored (wire JSON) or nil; it is
	// stamped onto the session at creation.
	Budget json.RawMessage
}

// References are the ids in a deployment definition that a backend can check
// at create/update time.
type References struct {
	Agent         AgentRef
	EnvironmentID string
	VaultIDs      []string
	FileIDs       []string
	// MemoryStoreIDs are the memory_store resources' ids.
	MemoryStoreIDs []string
}

// Backend creates sessions. Implementations must be safe for concurrent use.
type Backend interface {
	// Name is a short label for logs and metrics ("upstream", "local", "none").
	Name() string

	// ResolveAgent pins an agent: version 0 means "the latest version".
	// It returns *NotFoundError when the agent does not exist (or the version
	// does not), and an error wrapping ErrUnavailable when the backend cannot
	// be reached.
	ResolveAgent(ctx context.Context, agentID string, version int64) (AgentRef, error)

	// CheckReferences validates the ids of a definition before it is stored.
	// It returns *NotFoundError naming the field for an unknown id.
	CheckReferences(ctx context.Context, refs References) error

	// CreateSession creates the session and delivers its initial events. On
	// failure it returns a *RunError. When the session was created but the
	// events could not be delivered, the *RunError's message names the
	// session, and the backend retires that half-started session as best it
	// can; a run records either a session or an error, never both.
	CreateSession(ctx context.Context, req CreateRequest) (sessionID string, err error)

	// Close releases what the backend holds (local: stops its harnesses
	// within ctx; upstream: idle connections). The daemon calls it once, at
	// shutdown, after the scheduler and the API have stopped; ctx carries
	// the deadline of the one shutdown budget (shutdown_timeout), and Close
	// must return by it.
	Close(ctx context.Context) error
}

// SessionRouter is implemented by backends that serve the /v1/sessions… (and
// other non-deployment /v1/…) routes themselves, by proxying or locally. The
// API layer sends every /v1 request it does not own to this handler.
type SessionRouter interface {
	SessionHandler() http.Handler
}

// SessionProxy is implemented by a SessionRouter that reverse-proxies to
// another server: the API layer then leaves the body limit and the beta
// check of its own routes to it.
type SessionProxy interface {
	ProxiesSessions() bool
}

// RunSessionFinder is implemented by backends that can tell, after a crash,
// whether a run whose intent was left behind did create its session: the
// local one from the daemon's own file (or the cluster's session index),
// the upstream one by listing the agent's recent sessions for the run's
// metadata. Finding is all it does: a session is never created again.
type RunSessionFinder interface {
	// SessionOfRun returns the session created for the run, complete with
	// its initial events, or "" when there is none. An error means it
	// could not tell (the run then records unknown_error); ctx bounds the
	// search, since the leader resolves intents before it fires.
	SessionOfRun(ctx context.Context, run RunRef) (sessionID string, err error)
}

// RunRef is what a run's intent says about it: enough to find its session.
type RunRef struct {
	DeploymentID string
	RunID        string
	Agent        AgentRef
	// Started is when the intent was written: every attempt to create the
	// run's session began later.
	Started time.Time
}

// ErrUnavailable marks errors where the backend could not be reached at all
// (or answered in a way worth retrying later: timeouts, 5xx, 429).
var ErrUnavailable = errors.New("session backend unavailable")

// ErrRefused marks a backend that answered but refused the daemon itself
// (its credentials or permissions): a configuration problem that retrying
// does not fix.
var ErrRefused = errors.New("session backend refused the daemon")

// FieldError says the backend rejected a field of a definition for a reason
// other than "not found" (e.g. the upstream answered 400 about the id, or
// the backend cannot serve what the field asks for).
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// NotFoundError says an id in a definition does not exist on the backend.
type NotFoundError struct {
	Field string // wire field path, e.g. "agent", "environment_id", "vault_ids[1]"
	ID    string
	// Archived is true when the object exists but is archived.
	Archived bool
}

func (e *NotFoundError) Error() string {
	if e.Archived {
		return fmt.Sprintf("%s: %q is archived", e.Field, e.ID)
	}
	return fmt.Sprintf("%s: %q was not found on the session backend", e.Field, e.ID)
}

// ErrorType is a deployment run error type, as it appears on the wire.
type ErrorType string

const (
	ErrEnvironmentArchived          ErrorType = "environment_archived_error"
	ErrAgentArchived                ErrorType = "agent_archived_error"
	ErrEnvironmentNotFound          ErrorType = "environment_not_found_error"
	ErrVaultNotFound                ErrorType = "vault_not_found_error"
	ErrFileNotFound                 ErrorType = "file_not_found_error"
	ErrSessionResourceNotFound      ErrorType = "session_resource_not_found_error"
	ErrWorkspaceArchived            ErrorType = "workspace_archived_error"
	ErrOrganizationDisabled         ErrorType = "organization_disabled_error"
	ErrMemoryStoreArchived          ErrorType = "memory_store_archived_error"
	ErrSkillNotFound                ErrorType = "skill_not_found_error"
	ErrVaultArchived                ErrorType = "vault_archived_error"
	ErrUnknown                      ErrorType = "unknown_error"
	ErrSelfHostedResourcesUnsupport ErrorType = "self_hosted_resources_unsupported_error"
	ErrMCPEgressBlocked             ErrorType = "mcp_egress_blocked_error"
	ErrSessionRateLimited           ErrorType = "session_rate_limited_error"
	ErrSessionCreationRejected      ErrorType = "session_creation_rejected_error"
)

// PausesDeployment reports whether a scheduled fire failing with this type
// pauses its deployment. Rate limits and rejections are transient or
// per-request, so the schedule keeps firing.
func (t ErrorType) PausesDeployment() bool {
	switch t {
	case ErrSessionRateLimited, ErrSessionCreationRejected:
		return false
	}
	return t.Known()
}

// Known reports whether t is one of the run error types of the contract.
func (t ErrorType) Known() bool {
	switch t {
	case ErrEnvironmentArchived, ErrAgentArchived, ErrEnvironmentNotFound, ErrVaultNotFound,
		ErrFileNotFound, ErrSessionResourceNotFound, ErrWorkspaceArchived, ErrOrganizationDisabled,
		ErrMemoryStoreArchived, ErrSkillNotFound, ErrVaultArchived, ErrUnknown,
		ErrSelfHostedResourcesUnsupport, ErrMCPEgressBlocked, ErrSessionRateLimited, ErrSessionCreationRejected:
		return true
	}
	return false
}

// RunError is a classified session-creation failure, recorded on the run.
type RunError struct {
	Type    ErrorType
	Message string
}

func (e *RunError) Error() string { return string(e.Type) + ": " + e.Message }

// AsRunError classifies any error: a *RunError is returned as is, anything
// else becomes unknown_error with its message.
func AsRunError(err error) *RunError {
	if err == nil {
		return nil
	}
	var re *RunError
	if errors.As(err, &re) {
		return re
	}
	return &RunError{Type: ErrUnknown, Message: err.Error()}
}

// Unconfigured is the backend used when none is configured: definitions with
// a pinned agent version can be stored, and every run records an error that
// says so instead of pretending to create a session.
type Unconfigured struct{}

// Name implements Backend.
func (Unconfigured) Name() string { return "none" }

// ResolveAgent accepts pinned versions; "latest" needs a backend to ask.
func (Unconfigured) ResolveAgent(_ context.Context, agentID string, version int64) (AgentRef, error) {
	if version > 0 {
		return AgentRef{ID: agentID, Version: version}, nil
	}
	return AgentRef{}, &FieldError{Field: "agent", Message: fmt.Sprintf(
		"no session backend is configured (backend: none), so the latest version of agent %q cannot be looked up; pin a version: {\"type\":\"agent\",\"id\":%q,\"version\":N}", agentID, agentID)}
}

// CheckReferences accepts every id: there is nothing to check against.
func (Unconfigured) CheckReferences(context.Context, References) error { return nil }

// Close implements Backend; there is nothing to release.
func (Unconfigured) Close(context.Context) error { return nil }

// CreateSession always fails, with session_creation_rejected_error: the
// creation is refused by configuration, not by the deployment, so a
// scheduled deployment keeps its schedule (an auto-pausing type would pause
// every scheduled deployment on its first fire) and fires normally once a
// backend is configured.
func (Unconfigured) CreateSession(context.Context, CreateRequest) (string, error) {
	return "", &RunError{Type: ErrSessionCreationRejected, Message: "no session backend is configured (set backend to local or upstream); the run is recorded and the schedule keeps firing"}
}
