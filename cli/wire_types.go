package cli

import (
	"encoding/json"
	"time"
)

// Client-side views of the wire shapes in api-contract.md: only the fields
// the human-readable output shows. --json prints the API's own bytes, so
// nothing is lost by decoding partially here.

type listPage struct {
	Data     []json.RawMessage `json:"data"`
	NextPage *string           `json:"next_page"`
}

type agentRef struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
}

type cronSchedule struct {
	Expression     string      `json:"expression"`
	Timezone       string      `json:"timezone"`
	LastRunAt      *time.Time  `json:"last_run_at"`
	UpcomingRunsAt []time.Time `json:"upcoming_runs_at"`
}

type pausedReason struct {
	Type  string `json:"type"`
	Error *struct {
		Type string `json:"type"`
	} `json:"error"`
}

type initialEvent struct {
	Type string `json:"type"`
}

// resource holds the fields of every resource type; the API never returns
// authorization tokens, so there is none to hide.
type resource struct {
	Type     string `json:"type"`
	URL      string `json:"url"`
	Checkout *struct {
		Type string `json:"type"`
		Name string `json:"name"`
		SHA  string `json:"sha"`
	} `json:"checkout"`
	MountPath     *string `json:"mount_path"`
	FileID        string  `json:"file_id"`
	MemoryStoreID string  `json:"memory_store_id"`
	Access        *string `json:"access"`
	Instructions  *string `json:"instructions"`
}

type deployment struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Description   *string           `json:"description"`
	Agent         agentRef          `json:"agent"`
	EnvironmentID string            `json:"environment_id"`
	InitialEvents []initialEvent    `json:"initial_events"`
	Resources     []resource        `json:"resources"`
	VaultIDs      []string          `json:"vault_ids"`
	Metadata      map[string]string `json:"metadata"`
	Schedule      *cronSchedule     `json:"schedule"`
	Status        string            `json:"status"`
	PausedReason  *pausedReason     `json:"paused_reason"`
	ArchivedAt    *time.Time        `json:"archived_at"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
}

type runTrigger struct {
	Type        string     `json:"type"`
	ScheduledAt *time.Time `json:"scheduled_at"`
}

type runError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

type deploymentRun struct {
	ID             string     `json:"id"`
	DeploymentID   string     `json:"deployment_id"`
	Agent          agentRef   `json:"agent"`
	TriggerContext runTrigger `json:"trigger_context"`
	SessionID      *string    `json:"session_id"`
	Error          *runError  `json:"error"`
	CreatedAt      time.Time  `json:"created_at"`
}

// Admin shapes (the admin routes of the daemon).

type apiKey struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Key        string     `json:"key,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

type apiKeyList struct {
	Data []apiKey `json:"data"`
}

type keyRotation struct {
	Recipient string `json:"recipient"`
	Resealed  int    `json:"resealed"`
}
