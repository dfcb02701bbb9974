package httpapi

import (
	"encoding/json"
	"time"

	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/sessions"
)

// Wire shapes of api-contract.md. Nullable fields are pointers or raw JSON
// rendered as explicit nulls, because the SDKs expect every key present.

type wireAgent struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Version int64  `json:"version"`
}

type wireSchedule struct {
	Type           string   `json:"type"`
	Expression     string   `json:"expression"`
	Timezone       string   `json:"timezone"`
	LastRunAt      *string  `json:"last_run_at"`
	UpcomingRunsAt []string `json:"upcoming_runs_at"`
}

type wirePausedReason struct {
	Type  string             `json:"type"`
	Error *wireErrorTypeOnly `json:"error,omitempty"`
}

type wireErrorTypeOnly struct {
	Type string `json:"type"`
}

type wireDeployment struct {
	Type          string            `json:"type"`
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Description   *string           `json:"description"`
	Agent         wireAgent         `json:"agent"`
	EnvironmentID string            `json:"environment_id"`
	InitialEvents []json.RawMessage `json:"initial_events"`
	Resources     []any             `json:"resources"`
	VaultIDs      []string          `json:"vault_ids"`
	Metadata      map[string]string `json:"metadata"`
	Budget        json.RawMessage   `json:"budget"`
	Schedule      *wireSchedule     `json:"schedule"`
	Status        string            `json:"status"`
	PausedReason  *wirePausedReason `json:"paused_reason"`
	ArchivedAt    *string           `json:"archived_at"`
	CreatedAt     string            `json:"created_at"`
	UpdatedAt     string            `json:"updated_at"`
	// ManagedBy is sandbox0d's extension: the deployment set and key whose
	// files own the definition; absent for API-made deployments.
	ManagedBy *deployments.ManagedBy `json:"managed_by,omitempty"`
}

type wireRepoResource struct {
	Type      string             `json:"type"`
	URL       string             `json:"url"`
	Checkout  *sessions.Checkout `json:"checkout"`
	MountPath *string            `json:"mount_path"`
}

type wireFileResource struct {
	Type      string  `json:"type"`
	FileID    string  `json:"file_id"`
	MountPath *string `json:"mount_path"`
}

type wireMemoryStoreResource struct {
	Type          string  `json:"type"`
	MemoryStoreID string  `json:"memory_store_id"`
	Access        *string `json:"access"`
	Instructions  *string `json:"instructions"`
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func formatTimePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := formatTime(*t)
	return &s
}

var nullJSON = json.RawMessage("null")

func renderDeployment(d *deployments.Deployment, upcoming []time.Time) wireDeployment {
	w := wireDeployment{
		Type:          "deployment",
		ID:            d.ID,
		Name:          d.Name,
		Agent:         wireAgent{Type: "agent", ID: d.Agent.ID, Version: d.Agent.Version},
		EnvironmentID: d.EnvironmentID,
		InitialEvents: d.InitialEvents,
		Resources:     make([]any, 0, len(d.Resources)),
		VaultIDs:      d.VaultIDs,
		Metadata:      d.Metadata,
		Budget:        d.Budget,
		Status:        d.Status(),
		ArchivedAt:    formatTimePtr(d.ArchivedAt),
		CreatedAt:     formatTime(d.CreatedAt),
		UpdatedAt:     formatTime(d.UpdatedAt),
		ManagedBy:     d.ManagedBy,
	}
	if d.Description != "" {
		desc := d.Description
		w.Description = &desc
	}
	if w.VaultIDs == nil {
		w.VaultIDs = []string{}
	}
	if w.Metadata == nil {
		w.Metadata = map[string]string{}
	}
	if len(w.Budget) == 0 {
		w.Budget = nullJSON
	}
	for _, r := range d.Resources {
		w.Resources = append(w.Resources, renderResource(r))
	}
	if d.Schedule != nil {
		s := &wireSchedule{Type: "cron", Expression: d.Schedule.Expression, Timezone: d.Schedule.Timezone,
			LastRunAt: formatTimePtr(d.LastRunAt), UpcomingRunsAt: make([]string, 0, len(upcoming))}
		for _, t := range upcoming {
			s.UpcomingRunsAt = append(s.UpcomingRunsAt, formatTime(t))
		}
		w.Schedule = s
	}
	if pr := d.PausedReason; pr != nil {
		w.PausedReason = &wirePausedReason{Type: pr.Type}
		if pr.Type == deployments.PausedError {
			w.PausedReason.Error = &wireErrorTypeOnly{Type: string(pr.ErrorType)}
		}
	}
	return w
}

// renderResource echoes a resource without its token, ever.
func renderResource(r deployments.Resource) any {
	switch r.Type {
	case deployments.ResourceGitHubRepository:
		return wireRepoResource{Type: r.Type, URL: r.URL, Checkout: r.Checkout, MountPath: r.MountPath}
	case deployments.ResourceFile:
		return wireFileResource{Type: r.Type, FileID: r.FileID, MountPath: r.MountPath}
	default:
		return wireMemoryStoreResource{Type: r.Type, MemoryStoreID: r.MemoryStoreID, Access: r.Access, Instructions: r.Instructions}
	}
}

type wireTrigger struct {
	Type        string  `json:"type"`
	ScheduledAt *string `json:"scheduled_at,omitempty"`
}

type wireRunError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

type wireRun struct {
	Type           string        `json:"type"`
	ID             string        `json:"id"`
	DeploymentID   string        `json:"deployment_id"`
	Agent          wireAgent     `json:"agent"`
	TriggerContext wireTrigger   `json:"trigger_context"`
	SessionID      *string       `json:"session_id"`
	Error          *wireRunError `json:"error"`
	CreatedAt      string        `json:"created_at"`
}

func renderRun(r *deployments.Run) wireRun {
	w := wireRun{
		Type:           "deployment_run",
		ID:             r.ID,
		DeploymentID:   r.DeploymentID,
		Agent:          wireAgent{Type: "agent", ID: r.Agent.ID, Version: r.Agent.Version},
		TriggerContext: wireTrigger{Type: r.Trigger, ScheduledAt: formatTimePtr(r.ScheduledAt)},
		CreatedAt:      formatTime(r.CreatedAt),
	}
	if r.SessionID != "" {
		id := r.SessionID
		w.SessionID = &id
	}
	if r.Error != nil {
		w.Error = &wireRunError{Type: string(r.Error.Type), Message: r.Error.Message}
	}
	return w
}

type wireList[T any] struct {
	Data     []T     `json:"data"`
	NextPage *string `json:"next_page"`
}
