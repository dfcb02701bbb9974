// Package deployments is the domain: what a deployment and a deployment run
// are, the rules for creating and changing them, and the run pipeline (run
// intent → session backend → run record → auto-pause) that manual runs and
// scheduled fires share. It must not know HTTP, bbolt buckets or how a
// backend reaches its sessions; it talks to the store, the session backend,
// the secret keyring and the schedule package through their APIs.
package deployments

import (
	"encoding/json"
	"time"

	"github.com/sandbox0/sandbox0d/sessions"
)

// Deployment is the stored definition. Its JSON encoding is the storage
// format (the wire format is rendered by the API layer).
type Deployment struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Description   string            `json:"description,omitempty"`
	Agent         sessions.AgentRef `json:"agent"`
	EnvironmentID string            `json:"environment_id"`
	// InitialEvents are validated, compacted wire JSON objects.
	InitialEvents []json.RawMessage `json:"initial_events"`
	Resources     []Resource        `json:"resources,omitempty"`
	VaultIDs      []string          `json:"vault_ids,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	// Budget is stored and echoed but not enforced.
	Budget       json.RawMessage `json:"budget,omitempty"`
	Schedule     *Schedule       `json:"schedule,omitempty"`
	PausedReason *PausedReason   `json:"paused_reason,omitempty"`
	ArchivedAt   *time.Time      `json:"archived_at,omitempty"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
	// LastRunAt is when the latest scheduled run started.
	LastRunAt *time.Time `json:"last_run_at,omitempty"`
	// PlanFrom is the instant fires are planned from: creation, a schedule
	// change, an unpause, or the nominal instant of the latest scheduled fire.
	// The next fire is the first occurrence after max(PlanFrom, now); at
	// startup, occurrences between PlanFrom and now are the missed fires.
	PlanFrom time.Time `json:"plan_from"`
	// Generation changes whenever something that affects firing changes
	// (schedule, pause, unpause, archive), so a fire planned under an older
	// generation is recognised as stale and skipped.
	Generation uint64 `json:"generation"`
	// ManagedBy is the deployment set and key whose files own the
	// definition (apply.go); nil for a deployment made through the API. It
	// lives here, not in the user's metadata pairs, so it costs none of them.
	ManagedBy *ManagedBy `json:"managed_by,omitempty"`
}

// ManagedBy names the deployment set document that owns a deployment.
type ManagedBy struct {
	Set string `json:"set"`
	Key string `json:"key"`
}

// Schedule is a cron schedule exactly as the client sent it.
type Schedule struct {
	Expression string `json:"expression"`
	Timezone   string `json:"timezone"`
}

// Paused-reason types.
const (
	PausedManual = "manual"
	PausedError  = "error"
)

// PausedReason says why a deployment is paused. ErrorType is set for "error".
type PausedReason struct {
	Type      string             `json:"type"`
	ErrorType sessions.ErrorType `json:"error_type,omitempty"`
}

// Status values.
const (
	StatusActive = "active"
	StatusPaused = "paused"
)

// Status is "paused" exactly when a paused reason is set; archived
// deployments report "active".
func (d *Deployment) Status() string {
	if d.PausedReason != nil {
		return StatusPaused
	}
	return StatusActive
}

// Archived reports whether the deployment is archived.
func (d *Deployment) Archived() bool { return d.ArchivedAt != nil }

// Schedulable reports whether the timer loop should hold the deployment.
func (d *Deployment) Schedulable() bool {
	return d.Schedule != nil && d.PausedReason == nil && d.ArchivedAt == nil
}

// Resource is a stored resource. The authorization token is never stored in
// the clear: SealedToken is an age ciphertext bound to (deployment, position).
type Resource struct {
	Type          string             `json:"type"`
	URL           string             `json:"url,omitempty"`
	Checkout      *sessions.Checkout `json:"checkout,omitempty"`
	MountPath     *string            `json:"mount_path,omitempty"`
	FileID        string             `json:"file_id,omitempty"`
	MemoryStoreID string             `json:"memory_store_id,omitempty"`
	Access        *string            `json:"access,omitempty"`
	Instructions  *string            `json:"instructions,omitempty"`
	SealedToken   []byte             `json:"sealed_token,omitempty"`
}

// Resource types.
const (
	ResourceGitHubRepository = "github_repository"
	ResourceFile             = "file"
	ResourceMemoryStore      = "memory_store"
)

// Trigger types.
const (
	TriggerManual   = "manual"
	TriggerSchedule = "schedule"
)

// Run is the audit record of one session-creation attempt.
type Run struct {
	ID           string            `json:"id"`
	DeploymentID string            `json:"deployment_id"`
	Agent        sessions.AgentRef `json:"agent"`
	Trigger      string            `json:"trigger"`
	ScheduledAt  *time.Time        `json:"scheduled_at,omitempty"`
	SessionID    string            `json:"session_id,omitempty"`
	Error        *RunError         `json:"error,omitempty"`
	CreatedAt    time.Time         `json:"created_at"`
}

// RunError is the error recorded on a run.
type RunError struct {
	Type    sessions.ErrorType `json:"type"`
	Message string             `json:"message"`
}

// intent is written before the session backend is called, so a crash in
// between is found at startup and resolved instead of firing twice.
type intent struct {
	Run Run `json:"run"`
	// Writer is the etcd lease of the node that wrote it (cluster mode; 0
	// on bbolt): only intents whose writer's lease expired are resolved by
	// another node (cluster.go).
	Writer int64 `json:"writer,omitempty"`
}
