package cli

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/sessions"
)

// fleetNow is "now" for every golden test on the fleet: Monday 2026-11-30,
// 11:00 in Berlin.
const fleetNow = "2026-11-30T10:00:00Z"

// fleet is a set of deployments and runs covering every row kind the tables
// show, built through the real service with the clock moved between steps.
type fleet struct {
	*apiEnv
	digest, weekly, nightly, triage, cleanup string
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	e := newAPIEnv(t, mustTime(t, "2026-11-20T09:00:00Z"))
	f := &fleet{apiEnv: e}

	// Archived, after one scheduled run.
	cleanup := minimalDeployment("old-cleanup")
	cleanup["schedule"] = cronSpec("0 3 * * *", "UTC")
	f.cleanup = e.createDeployment("cleanup", cleanup)
	e.clock.Set(mustTime(t, "2026-11-22T03:00:04Z"))
	e.fire(f.cleanup, mustTime(t, "2026-11-22T03:00:00Z"), "cleanup_run")
	e.clock.Set(mustTime(t, "2026-11-25T12:00:00Z"))
	_, err := e.svc.Archive(t.Context(), f.cleanup)
	require.NoError(t, err)

	// Paused by hand, never fired.
	e.clock.Set(mustTime(t, "2026-11-26T08:00:00Z"))
	weekly := minimalDeployment("weekly-report")
	weekly["schedule"] = cronSpec("30 17 * * 5", "America/New_York")
	f.weekly = e.createDeployment("weekly", weekly)
	e.clock.Set(mustTime(t, "2026-11-26T10:00:00Z"))
	_, err = e.svc.Pause(t.Context(), f.weekly)
	require.NoError(t, err)

	// Active, with everything a deployment can carry.
	e.clock.Set(mustTime(t, "2026-11-27T09:00:00Z"))
	digest := minimalDeployment("daily-digest")
	digest["description"] = "Posts the morning digest to #ops"
	digest["schedule"] = cronSpec("0 9 * * 1-5", "Europe/Berlin")
	digest["initial_events"] = []any{
		userMessage("Summarise yesterday's alerts."),
		map[string]any{"type": "system.message", "content": []any{map[string]any{"type": "text", "text": "Be brief."}}},
	}
	digest["resources"] = []any{
		map[string]any{"type": "github_repository", "url": "https://github.com/example/ops", "mount_path": "/workspace/ops",
			"checkout": map[string]any{"type": "branch", "name": "main"}, "authorization_token": "ghp_secret_never_shown"},
		map[string]any{"type": "file", "file_id": "file_alerts", "mount_path": "/mnt/alerts.csv"},
	}
	digest["vault_ids"] = []any{"vlt_ops"}
	digest["metadata"] = map[string]any{"team": "sre", "channel": "#ops"}
	f.digest = e.createDeployment("digest", digest)

	// Manual only, with a name too long for the table.
	e.clock.Set(mustTime(t, "2026-11-28T15:00:00Z"))
	f.triage = e.createDeployment("triage", minimalDeployment("ad-hoc-triage-for-the-incident-response-rotation"))
	e.clock.Set(mustTime(t, "2026-11-29T20:00:00Z"))
	e.runNow(f.triage, "triage_run1")

	// Monday's 09:00 Berlin fire succeeds.
	e.clock.Set(mustTime(t, "2026-11-30T08:00:02Z"))
	e.fire(f.digest, mustTime(t, "2026-11-30T08:00:00Z"), "digest_run")

	// Paused by an error: its environment is gone.
	e.clock.Set(mustTime(t, "2026-11-30T09:00:00Z"))
	nightly := minimalDeployment("nightly-build")
	nightly["schedule"] = cronSpec("*/15 * * * *", "UTC")
	f.nightly = e.createDeployment("nightly", nightly)
	e.clock.Set(mustTime(t, "2026-11-30T09:45:01Z"))
	e.backend.FailNext(&sessions.RunError{Type: sessions.ErrEnvironmentNotFound, Message: "environment env_1 was not found"})
	e.fire(f.nightly, mustTime(t, "2026-11-30T09:45:00Z"), "nightly_run")

	// A manual run refused for rate limiting, with a long message.
	e.clock.Set(mustTime(t, "2026-11-30T09:50:00Z"))
	e.backend.FailNext(&sessions.RunError{Type: sessions.ErrSessionRateLimited,
		Message: "too many sessions were created in the last minute for this organization; retry after 30 seconds"})
	e.runNow(f.triage, "triage_run2")

	e.clock.Set(mustTime(t, fleetNow))
	return f
}
