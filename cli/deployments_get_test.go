package cli

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDeploymentsGetGolden(t *testing.T) {
	f := newFleet(t)
	for _, tc := range []struct{ golden, id string }{
		{"active_full", f.digest},
		{"paused_error", f.nightly},
		{"archived", f.cleanup},
		{"manual_only", f.triage},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			res := f.cli("deployments", "get", tc.id)
			require.NoError(t, res.err)
			assert.NotContains(t, res.stdout, "ghp_secret", "tokens are never shown")
			assertGolden(t, tc.golden, f.stable(res.stdout))
		})
	}
}

func TestDeploymentsGetJSON(t *testing.T) {
	f := newFleet(t)
	res := f.cli("--json", "deployments", "get", f.digest)
	require.NoError(t, res.err)
	var d map[string]any
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &d), res.stdout)
	for _, field := range []string{"type", "id", "name", "description", "agent", "environment_id", "initial_events",
		"resources", "vault_ids", "metadata", "schedule", "status", "paused_reason", "archived_at", "created_at", "updated_at"} {
		assert.Contains(t, d, field)
	}
	assert.Equal(t, f.digest, d["id"])
	assert.Equal(t, "deployment", d["type"])
	assert.NotContains(t, res.stdout, "ghp_secret")
}

func TestDeploymentsGetNotFound(t *testing.T) {
	e := newAPIEnv(t, mustTime(t, fleetNow))
	for _, args := range [][]string{
		{"deployments", "get", "depl_missing"},
		{"--json", "deployments", "get", "depl_missing"},
	} {
		res := e.cli(args...)
		require.Error(t, res.err)
		assert.Empty(t, res.stdout)
		var apiErr *APIError
		require.True(t, errors.As(res.err, &apiErr), "%v", res.err)
		assert.Equal(t, 404, apiErr.Status)
		assert.Equal(t, "not_found_error", apiErr.Type)
		assert.Contains(t, apiErr.Message, "depl_missing")
		assert.NotEmpty(t, apiErr.RequestID)
		// The API's message leads what the person reads.
		assert.Equal(t, apiErr.Message, res.err.Error()[:len(apiErr.Message)])
	}
}
