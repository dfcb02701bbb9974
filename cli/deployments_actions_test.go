package cli

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/sessions"
)

func TestDeploymentsStatusActions(t *testing.T) {
	f := newFleet(t)
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"deployments", "pause", f.digest}, f.digest + " daily-digest: paused (manual)\n"},
		{[]string{"deployments", "unpause", f.digest}, f.digest + " daily-digest: active\n"},
		{[]string{"deployments", "unpause", f.nightly}, f.nightly + " nightly-build: active\n"},
		{[]string{"deployments", "archive", f.weekly}, f.weekly + " weekly-report: archived\n"},
	}
	for _, s := range steps {
		res := f.cli(s.args...)
		require.NoError(t, res.err, "%v", s.args)
		assert.Equal(t, s.want, res.stdout)
	}
	res := f.cli("--json", "deployments", "pause", f.digest)
	require.NoError(t, res.err)
	var d map[string]any
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &d))
	assert.Equal(t, "paused", d["status"])
	assert.Equal(t, map[string]any{"type": "manual"}, d["paused_reason"])

	res = f.cli("deployments", "pause", f.cleanup)
	require.Error(t, res.err, "an archived deployment cannot be paused")
	assert.Contains(t, res.err.Error(), "(conflict_error, HTTP 409")
}

func TestDeploymentsRun(t *testing.T) {
	f := newFleet(t)
	res := f.cli("deployments", "run", f.triage)
	require.NoError(t, res.err)
	assert.Contains(t, res.stdout, "Trigger:     manual\n")
	assert.Contains(t, res.stdout, "Session:     sesn_test000004\n")

	// A failed run is still a 200 from the API, but the command fails.
	f.backend.FailNext(&sessions.RunError{Type: sessions.ErrVaultNotFound, Message: "vault vlt_x was not found"})
	res = f.cli("--json", "deployments", "run", f.triage)
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), "vault_not_found_error: vault vlt_x was not found")
	var run map[string]any
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &run), "the run is still printed")
	assert.Equal(t, "deployment_run", run["type"])
	assert.Nil(t, run["session_id"])
}
