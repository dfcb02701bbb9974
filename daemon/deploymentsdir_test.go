package daemon_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
)

const digestFile = `name: digest
agent: agent_a
environment_id: env_1
initial_events:
  - type: user.message
    content: [{type: text, text: summarise}]
schedule: {type: cron, expression: "0 9 * * *", timezone: UTC}
`

// listManaged returns the names of the active deployments of set default.
func listManaged(t *testing.T, r *running) map[string]string {
	t.Helper()
	status, body := do(t, socketClient(r.socket), "GET", "http://s/v1/deployments", "", nil)
	require.Equal(t, 200, status, "%v", body)
	out := map[string]string{}
	for _, item := range body["data"].([]any) {
		d := item.(map[string]any)
		if m, ok := d["managed_by"].(map[string]any); ok {
			out[m["key"].(string)] = d["name"].(string)
		}
	}
	return out
}

// deployments_dir is applied at start and on reload (what SIGHUP runs); a
// broken file applies nothing, keeps the last good state and is counted.
func TestDeploymentsDirAppliedAtStartAndReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := filepath.Join(dir, "deployments")
	require.NoError(t, os.MkdirAll(filepath.Join(files, "nightly"), 0o700))
	write := func(name, content string) {
		require.NoError(t, os.WriteFile(filepath.Join(files, name), []byte(content), 0o600))
	}
	write("nightly/digest.yaml", digestFile)
	write("repo.token", "ghp_daemon_secret_123\n")
	write("repo.yaml", strings.Replace(digestFile, "name: digest", "name: repo", 1)+
		"resources: [{type: github_repository, url: \"https://github.com/o/r\", authorization_token_file: repo.token}]\n")
	write("report.json", `{"name":"report","agent":"agent_a","environment_id":"env_1","initial_events":[{"type":"user.message","content":[{"type":"text","text":"go"}]}]}`)
	cfg := baseConfig(dir)
	cfg.DeploymentsDir = files
	cfg.Runs.Retention.Interval = time.Hour // Reload validates the whole config
	r := start(t, cfg, daemon.Options{Backend: sessionstest.New(map[string]int64{"agent_a": 1})})
	admin := socketClient(r.socket)

	want := map[string]string{"nightly/digest.yaml": "digest", "report.json": "report", "repo.yaml": "repo"}
	require.Equal(t, want, listManaged(t, r))
	metrics := scrape(t, admin)
	assert.Contains(t, metrics, "sandbox0d_apply_errors_total 0")
	assert.NotContains(t, metrics, "sandbox0d_apply_last_success_timestamp_seconds 0\n")

	// The same directory again commits nothing: the token read from its
	// file compares equal to the sealed one.
	require.NoError(t, r.d.Reload(cfg))
	assert.Contains(t, r.logs.String(), "committed=false")
	assert.Contains(t, r.logs.String(), "unchanged=3")

	// A change and a broken file in the same reload: nothing applied.
	write("nightly/digest.yaml", strings.Replace(digestFile, "name: digest", "name: digest v2", 1))
	write("broken.yaml", strings.Replace(strings.Replace(digestFile, "name: digest", "name: broken", 1), `"0 9 * * *"`, `"61 * * * *"`, 1))
	require.NoError(t, r.d.Reload(cfg))
	require.Equal(t, want, listManaged(t, r), "the last good state keeps serving")
	assert.Contains(t, scrape(t, admin), "sandbox0d_apply_errors_total 1")
	logs := r.logs.String()
	assert.Contains(t, logs, "deployments_dir: nothing applied")
	assert.Contains(t, logs, "broken.yaml", "the log names the file")
	assert.Contains(t, logs, ".definition.schedule.expression", "and the field")

	// Fixed: the change applies; a removed file is archived (prune).
	require.NoError(t, os.Remove(filepath.Join(files, "broken.yaml")))
	require.NoError(t, os.Remove(filepath.Join(files, "report.json")))
	require.NoError(t, r.d.Reload(cfg))
	require.Equal(t, map[string]string{"nightly/digest.yaml": "digest v2", "repo.yaml": "repo"}, listManaged(t, r))
	assert.Contains(t, scrape(t, admin), "sandbox0d_apply_errors_total 1")

	// An emptied (or unmounted) directory archives nothing: the guard.
	require.NoError(t, os.Remove(filepath.Join(files, "nightly/digest.yaml")))
	require.NoError(t, os.Remove(filepath.Join(files, "repo.yaml")))
	require.NoError(t, r.d.Reload(cfg))
	require.Equal(t, map[string]string{"nightly/digest.yaml": "digest v2", "repo.yaml": "repo"}, listManaged(t, r))
	assert.Contains(t, scrape(t, admin), "sandbox0d_apply_errors_total 2")
	assert.Contains(t, r.logs.String(), "prune would archive 2 of the 2 deployments")
	assert.NotContains(t, r.logs.String(), "ghp_daemon_secret", "a token is never logged")
}
