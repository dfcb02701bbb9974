package local

import (
	"time"
)

// localModelID stands in for the model of a local agent: the harness, not
// the daemon, decides what model (if any) it talks to.
const localModelID = "local"

// sessionView is a session in the official wire shape
// (BetaManagedAgentsSession).
type sessionView struct {
	Type               string            `json:"type"`
	ID                 string            `json:"id"`
	Agent              agentView         `json:"agent"`
	ArchivedAt         *time.Time        `json:"archived_at"`
	Budget             *struct{}         `json:"budget"`
	CreatedAt          time.Time         `json:"created_at"`
	DeploymentID       *string           `json:"deployment_id"`
	EnvironmentID      string            `json:"environment_id"`
	Metadata           map[string]string `json:"metadata"`
	OutcomeEvaluations []struct{}        `json:"outcome_evaluations"`
	Resources          []map[string]any  `json:"resources"`
	Stats              statsView         `json:"stats"`
	Status             string            `json:"status"`
	Title              *string           `json:"title"`
	UpdatedAt          time.Time         `json:"updated_at"`
	Usage              usageView         `json:"usage"`
	VaultIDs           []string          `json:"vault_ids"`
}

type agentView struct {
	Type              string            `json:"type"`
	ID                string            `json:"id"`
	Version           int64             `json:"version"`
	Name              string            `json:"name"`
	Description       string            `json:"description"`
	System            string            `json:"system"`
	Model             map[string]string `json:"model"`
	ExecutionIdentity map[string]string `json:"execution_identity"`
	MCPServers        []struct{}        `json:"mcp_servers"`
	Skills            []struct{}        `json:"skills"`
	Tools             []struct{}        `json:"tools"`
	Multiagent        *struct{}         `json:"multiagent"`
}

type statsView struct {
	ActiveSeconds   float64 `json:"active_seconds"`
	DurationSeconds float64 `json:"duration_seconds"`
}

type usageView struct {
	ActiveSeconds        float64        `json:"active_seconds"`
	InputTokens          int64          `json:"input_tokens"`
	OutputTokens         int64          `json:"output_tokens"`
	CacheReadInputTokens int64          `json:"cache_read_input_tokens"`
	CacheCreation        map[string]int `json:"cache_creation"`
}

type deletedSessionView struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// viewSession renders a record; now measures sessions still going.
func viewSession(rec *sessionRecord, now time.Time) sessionView {
	end := now
	if rec.EndedAt != nil {
		end = *rec.EndedAt
	}
	var active float64
	if rec.StartedAt != nil {
		active = end.Sub(*rec.StartedAt).Seconds()
	}
	v := sessionView{
		Type: "session",
		ID:   rec.ID,
		Agent: agentView{
			Type: "agent", ID: rec.Agent.ID, Version: rec.Agent.Version, Name: rec.Agent.ID,
			Model:             map[string]string{"id": localModelID},
			ExecutionIdentity: map[string]string{"type": "service_account"},
			MCPServers:        []struct{}{}, Skills: []struct{}{}, Tools: []struct{}{},
		},
		ArchivedAt:         utcPtr(rec.ArchivedAt),
		CreatedAt:          rec.CreatedAt.UTC(),
		EnvironmentID:      rec.EnvironmentID,
		Metadata:           rec.Metadata,
		OutcomeEvaluations: []struct{}{},
		Resources:          []map[string]any{},
		Stats:              statsView{ActiveSeconds: active, DurationSeconds: end.Sub(rec.CreatedAt).Seconds()},
		Status:             rec.Status,
		UpdatedAt:          rec.UpdatedAt.UTC(),
		Usage: usageView{ActiveSeconds: active, CacheCreation: map[string]int{
			"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0}},
		VaultIDs: rec.VaultIDs,
	}
	if v.Metadata == nil {
		v.Metadata = map[string]string{}
	}
	if v.VaultIDs == nil {
		v.VaultIDs = []string{}
	}
	if rec.DeploymentID != "" {
		v.DeploymentID = &rec.DeploymentID
	}
	for _, res := range rec.Resources {
		r := map[string]any{
			"id":         res.ID,
			"type":       res.Type,
			"mount_path": res.MountPath,
			"created_at": res.CreatedAt.UTC(),
			"updated_at": res.CreatedAt.UTC(),
		}
		switch res.Type {
		case "github_repository":
			r["url"] = res.URL
			r["checkout"] = res.Checkout // null when the default branch was cloned
		case "file":
			r["file_id"] = res.FileID
		}
		v.Resources = append(v.Resources, r)
	}
	return v
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
