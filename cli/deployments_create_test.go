package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const digestYAML = `# The morning digest.
name: daily-digest
description: Posts the morning digest
agent: {type: agent, id: agent_a, version: 2}
environment_id: env_1
initial_events:
  - type: user.message
    content:
      - type: text
        text: |
          Summarise yesterday's alerts.
          Keep it short.
resources:
  - type: github_repository
    url: https://github.com/example/ops
    checkout: {type: branch, name: main}
    mount_path: /workspace/ops
    authorization_token: ghp_not_echoed
vault_ids: [vlt_ops]
metadata:
  release: 2026-01-01   # a date-looking value stays the string written
  build: "0042"
  on_call: "yes"
schedule:
  type: cron
  expression: 0 9 * * 1-5
  timezone: Europe/Berlin
`

const digestJSON = `{
  "name": "daily-digest",
  "description": "Posts the morning digest",
  "agent": {"type": "agent", "id": "agent_a", "version": 2},
  "environment_id": "env_1",
  "initial_events": [{"type": "user.message", "content": [{"type": "text", "text": "Summarise yesterday's alerts.\nKeep it short.\n"}]}],
  "resources": [{"type": "github_repository", "url": "https://github.com/example/ops",
    "checkout": {"type": "branch", "name": "main"}, "mount_path": "/workspace/ops", "authorization_token": "ghp_not_echoed"}],
  "vault_ids": ["vlt_ops"],
  "metadata": {"release": "2026-01-01", "build": "0042", "on_call": "yes"},
  "schedule": {"type": "cron", "expression": "0 9 * * 1-5", "timezone": "Europe/Berlin"}
}`

// withoutIdentity drops the fields that differ between two creations.
func withoutIdentity(t *testing.T, out string) map[string]any {
	t.Helper()
	var d map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &d), out)
	require.True(t, strings.HasPrefix(d["id"].(string), "depl_"), "id %v", d["id"])
	for _, k := range []string{"id", "created_at", "updated_at"} {
		delete(d, k)
	}
	return d
}

func TestDeploymentsCreateYAMLAndJSONAgree(t *testing.T) {
	e := newAPIEnv(t, mustTime(t, fleetNow))
	dir := t.TempDir()
	yamlFile := filepath.Join(dir, "digest.yaml")
	jsonFile := filepath.Join(dir, "digest.json")
	require.NoError(t, os.WriteFile(yamlFile, []byte(digestYAML), 0o600))
	require.NoError(t, os.WriteFile(jsonFile, []byte(digestJSON), 0o600))

	fromYAML := e.cli("--json", "deployments", "create", "-f", yamlFile)
	require.NoError(t, fromYAML.err)
	fromJSON := e.cli("--json", "deployments", "create", "-f", jsonFile)
	require.NoError(t, fromJSON.err)
	fromStdin := runCLI(t, e.clock.Now, nil, strings.NewReader(digestYAML), "--socket", e.socket, "--json", "deployments", "create", "-f", "-")
	require.NoError(t, fromStdin.err)

	want := withoutIdentity(t, fromJSON.stdout)
	assert.Equal(t, want, withoutIdentity(t, fromYAML.stdout))
	assert.Equal(t, want, withoutIdentity(t, fromStdin.stdout))
	assert.Equal(t, map[string]any{"release": "2026-01-01", "build": "0042", "on_call": "yes"}, want["metadata"])
	assert.NotContains(t, fromYAML.stdout, "ghp_not_echoed")

	list := e.cli("deployments", "list")
	require.NoError(t, list.err)
	assert.Equal(t, 4, strings.Count(list.stdout, "\n"), "header and three deployments:\n%s", list.stdout)
}

func TestDeploymentsCreateHumanOutput(t *testing.T) {
	e := newAPIEnv(t, mustTime(t, fleetNow))
	file := filepath.Join(t.TempDir(), "digest.yml")
	require.NoError(t, os.WriteFile(file, []byte(digestYAML), 0o600))
	res := e.cli("deployments", "create", "-f", file)
	require.NoError(t, res.err)
	assert.Contains(t, res.stdout, "Schedule:        0 9 * * 1-5 Europe/Berlin\n")
	assert.Contains(t, res.stdout, "Upcoming runs:   2026-12-01 09:00 CET (2026-12-01T08:00:00Z, in 22h)\n")
	assert.Contains(t, res.stdout, "Agent:           agent_a (version 2)\n")
}

func TestDeploymentsCreateRejects(t *testing.T) {
	e := newAPIEnv(t, mustTime(t, fleetNow))
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		return path
	}
	cases := []struct {
		name, file, message string
	}{
		{"missing file", filepath.Join(dir, "nope.yaml"), "no such file"},
		{"empty file", write("empty.yaml", "\n  \n"), "is empty"},
		{"bad json", write("bad.json", `{"name": `), "is not valid JSON"},
		{"bad yaml", write("bad.yaml", "name: [unclosed"), "not valid YAML"},
		{"two documents", write("two.yaml", "name: a\n---\nname: b\n"), "more than one YAML document"},
		{"duplicate key", write("dup.yaml", "name: a\nname: b\n"), "name: line 2: key appears twice"},
		// The API's own validation message comes back as the error.
		{"api validation", write("noname.yaml", "agent: agent_a\nenvironment_id: env_1\ninitial_events: []\n"), "name: is required (invalid_request_error, HTTP 400"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := e.cli("deployments", "create", "-f", tc.file)
			require.Error(t, res.err)
			assert.Contains(t, res.err.Error(), tc.message)
			assert.Empty(t, res.stdout)
		})
	}
	res := e.cli("deployments", "create")
	require.Error(t, res.err, "-f is required")
	assert.Contains(t, res.err.Error(), `"file" not set`)
}

func TestDeploymentsUpdateNullClears(t *testing.T) {
	f := newFleet(t)
	file := filepath.Join(t.TempDir(), "patch.yaml")
	// null clears description and the schedule, deletes one metadata key
	// and upserts another; absent fields are kept.
	require.NoError(t, os.WriteFile(file, []byte("description: null\nschedule: ~\nmetadata:\n  team: null\n  owner: alice\n"), 0o600))
	res := f.cli("--json", "deployments", "update", f.digest, "-f", file)
	require.NoError(t, res.err)
	var d map[string]any
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &d))
	assert.Nil(t, d["description"])
	assert.Nil(t, d["schedule"])
	assert.Equal(t, map[string]any{"channel": "#ops", "owner": "alice"}, d["metadata"])
	assert.Equal(t, "daily-digest", d["name"], "absent fields are kept")

	archived := f.cli("deployments", "update", f.cleanup, "-f", file)
	require.Error(t, archived.err)
	assert.Contains(t, archived.err.Error(), "archived")
	assert.Contains(t, archived.err.Error(), "conflict_error")
}
