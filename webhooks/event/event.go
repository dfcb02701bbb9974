// Package event names the webhook event types sandbox0d emits and mints
// event ids. It is a leaf: the packages that append outbox entries
// (deployments, sessions/local) and the one that delivers them (webhooks)
// share these names without depending on each other.
package event

import (
	"crypto/rand"
	"encoding/hex"
)

// Event types, exactly the SDK's BetaWebhookEventData type names.
const (
	DeploymentCreated  = "deployment.created"
	DeploymentUpdated  = "deployment.updated"
	DeploymentPaused   = "deployment.paused"
	DeploymentUnpaused = "deployment.unpaused"
	DeploymentArchived = "deployment.archived"

	RunStarted   = "deployment_run.started"
	RunSucceeded = "deployment_run.succeeded"
	RunFailed    = "deployment_run.failed"

	SessionCreated           = "session.created"
	SessionStatusRescheduled = "session.status_rescheduled"
	SessionStatusRunStarted  = "session.status_run_started"
	SessionStatusIdled       = "session.status_idled"
	SessionStatusTerminated  = "session.status_terminated"
	SessionArchived          = "session.archived"
	SessionDeleted           = "session.deleted"
	SessionBudgetReached     = "session.budget_reached"
	SessionUpdated           = "session.updated"
)

// Types lists every type sandbox0d can emit (endpoint filters are checked
// against it).
var Types = []string{
	DeploymentCreated, DeploymentUpdated, DeploymentPaused, DeploymentUnpaused, DeploymentArchived,
	RunStarted, RunSucceeded, RunFailed,
	SessionCreated, SessionStatusRescheduled, SessionStatusRunStarted, SessionStatusIdled,
	SessionStatusTerminated, SessionArchived, SessionDeleted, SessionBudgetReached, SessionUpdated,
}

// Known reports whether t is one of Types.
func Known(t string) bool {
	for _, k := range Types {
		if k == t {
			return true
		}
	}
	return false
}

// NewID returns a fresh event id: "wevt_" and 128 random bits in hex (the
// API's id alphabet). It is minted before the write transaction so that a
// transaction function run again appends the same event once.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "wevt_" + hex.EncodeToString(b[:])
}
