package local

import (
	"encoding/json"
	"time"
)

// unknownModelID is the model of a command agent whose config names none:
// the harness, not the daemon, decides what model (if any) it talks to. The
// official types require a model object with a string id, so the id is ""
// (unknown) rather than a made-up name; the agent's `model` key sets it.
const unknownModelID = ""

// nullIfEmpty renders an optional string member: null where the official
// types say "not set" (string | null), not "".
func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// sessionView is a session in the official wire shape
// (BetaManagedAgentsSession).
type sessionView struct {
	Type               string            `json:"type"`
	ID                 string            `json:"id"`
	Agent              agentView         `json:"agent"`
	ArchivedAt         *time.Time        `json:"archived_at"`
	Budget             json.RawMessage   `json:"budget"`
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
	// Node is the node that owns the session, in cluster mode only (issue
	// 26; an extension of the session object, absent on one box).
	Node string `json:"node,omitempty"`
}

type agentView struct {
	Type              string            `json:"type"`
	ID                string            `json:"id"`
	Version           int64             `json:"version"`
	Name              string            `json:"name"`
	Description       *string           `json:"description"`
	System            *string           `json:"system"`
	Model             map[string]string `json:"model"`
	ExecutionIdentity map[string]string `json:"execution_identity"`
	MCPServers        []map[string]any  `json:"mcp_servers"`
	Skills            []struct{}        `json:"skills"`
	Tools             []map[string]any  `json:"tools"`
	Multiagent        *struct{}         `json:"multiagent"`
}

type statsView struct {
	ActiveSeconds   float64 `json:"active_seconds"`
	DurationSeconds float64 `json:"duration_seconds"`
}

type usageView struct {
	ActiveSeconds        float64          `json:"active_seconds"`
	InputTokens          int64            `json:"input_tokens"`
	OutputTokens         int64            `json:"output_tokens"`
	CacheReadInputTokens int64            `json:"cache_read_input_tokens"`
	CacheCreation        map[string]int64 `json:"cache_creation"`
	ListCost             *moneyView       `json:"list_cost"`
	ServerToolUse        *struct{}        `json:"server_tool_use"`
}

// moneyView is a BetaMonetaryAmount: a decimal string and a currency.
type moneyView struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

type deletedSessionView struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// viewSession renders a record; now measures the turn still going.
func (b *Backend) viewSession(rec *sessionRecord, now time.Time) sessionView {
	end := now
	if rec.EndedAt != nil {
		end = *rec.EndedAt
	}
	active := time.Duration(rec.ActiveNanos)
	if rec.TurnStartedAt != nil {
		active += now.Sub(*rec.TurnStartedAt)
	}
	agent := b.agentView(rec.Agent.ID, rec.Agent.Version)
	v := sessionView{
		Node:               b.nodeOf(rec),
		Type:               "session",
		ID:                 rec.ID,
		Agent:              agent,
		ArchivedAt:         utcPtr(rec.ArchivedAt),
		Budget:             rec.Budget,
		CreatedAt:          rec.CreatedAt.UTC(),
		EnvironmentID:      rec.EnvironmentID,
		Metadata:           rec.Metadata,
		OutcomeEvaluations: []struct{}{},
		Resources:          []map[string]any{},
		Stats:              statsView{ActiveSeconds: active.Seconds(), DurationSeconds: end.Sub(rec.CreatedAt).Seconds()},
		Status:             rec.Status,
		Title:              nullIfEmpty(rec.Title),
		UpdatedAt:          rec.UpdatedAt.UTC(),
		Usage: usageView{
			ActiveSeconds:        active.Seconds(),
			InputTokens:          rec.Usage.InputTokens,
			OutputTokens:         rec.Usage.OutputTokens,
			CacheReadInputTokens: rec.Usage.CacheReadInputTokens,
			CacheCreation: map[string]int64{
				"ephemeral_1h_input_tokens": rec.Usage.CacheCreation1hTokens,
				"ephemeral_5m_input_tokens": rec.Usage.CacheCreation5mTokens,
			},
		},
		VaultIDs: rec.VaultIDs,
	}
	if len(v.Budget) == 0 {
		v.Budget = json.RawMessage("null")
	}
	if rec.Usage.ListCostCurrency != "" {
		// Minor units (cents), as every money object of the API.
		v.Usage.ListCost = &moneyView{Amount: centsString(rec.Usage.ListCostMicros), Currency: rec.Usage.ListCostCurrency}
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
		v.Resources = append(v.Resources, resourceView(rec.ID, res))
	}
	return v
}

// agentView is the session's agent snapshot, from the config when the agent
// is still declared there.
func (b *Backend) agentView(id string, version int64) agentView {
	v := agentView{
		Type: "agent", ID: id, Version: version, Name: id,
		Model:             map[string]string{"id": unknownModelID},
		ExecutionIdentity: map[string]string{"type": "service_account"},
		MCPServers:        []map[string]any{}, Skills: []struct{}{}, Tools: []map[string]any{},
	}
	if len(b.agents[id]) == 0 {
		// An agent created through the API: the version the session pinned,
		// whole.
		if a, ok := b.apiAgentVersion(id, version); ok && a.Version == version {
			o := apiAgentObject(a)
			v.Name, v.Description, v.System, v.Model["id"] = o.Name, o.Description, o.System, o.Model.ID
			v.MCPServers, v.Tools = o.MCPServers, o.Tools
		}
		return v
	}
	if a, ok := b.agent(id, version); ok && a.Version == version {
		if a.Name != "" {
			v.Name = a.Name
		}
		if a.Model != "" {
			v.Model["id"] = a.Model
		}
		v.Description, v.System = nullIfEmpty(a.Description), nullIfEmpty(a.System)
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
