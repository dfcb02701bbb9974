package cli

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/sessions"
)

// `deployments runs ID` is `runs list --deployment ID`; a failed run's row
// shows its error type and only the first line of its message.
func TestDeploymentsRunsGolden(t *testing.T) {
	e := newAPIEnv(t, mustTime(t, "2026-11-30T09:00:00Z"))
	id := e.createDeployment("build", minimalDeployment("build"))
	other := e.createDeployment("other", minimalDeployment("other"))
	e.clock.Set(mustTime(t, "2026-11-30T09:10:00Z"))
	e.runNow(id, "ok_run")
	e.runNow(other, "other_run")
	e.clock.Set(mustTime(t, "2026-11-30T09:20:00Z"))
	e.backend.FailNext(&sessions.RunError{Type: sessions.ErrUnknown,
		Message: "the harness exited with status 2\nstderr: fatal: could not read Username\nhint: set a token"})
	e.runNow(id, "failed_run")
	e.clock.Set(mustTime(t, "2026-11-30T10:00:00Z"))

	res := e.cli("deployments", "runs", id)
	require.NoError(t, res.err)
	assert.NotContains(t, res.stdout, "could not read Username", "only the first line of the message")
	assertGolden(t, "runs", e.stable(res.stdout))

	res = e.cli("deployments", "runs", id, "--errors")
	require.NoError(t, res.err)
	assertGolden(t, "errors", e.stable(res.stdout))

	list := e.cli("runs", "list", "--deployment", id)
	require.NoError(t, list.err)
	assert.Equal(t, list.stdout, e.cli("deployments", "runs", id).stdout, "the alias lists the same runs")
}
