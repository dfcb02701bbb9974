package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/internal/deployfiles"
)

// createShape is what a deployment's create body determines, as GET shows
// it: two deployments with equal createShape were made from equal files.
func createShape(t *testing.T, data []byte) map[string]any {
	var d map[string]any
	require.NoError(t, json.Unmarshal(data, &d))
	for _, k := range []string{"id", "type", "created_at", "updated_at", "status", "paused_reason", "archived_at", "managed_by"} {
		delete(d, k)
	}
	if s, ok := d["schedule"].(map[string]any); ok {
		delete(s, "last_run_at")
		delete(s, "upcoming_runs_at")
	}
	return d
}

func TestDeploymentsExportRoundTrip(t *testing.T) {
	env := newAPIEnv(t, mustTime(t, "2026-03-02T08:00:00Z"))
	rich := minimalDeployment("daily digest/ops")
	rich["description"] = "Posts the digest"
	rich["initial_events"] = []any{userMessage("Summarise yesterday's alerts.\nKeep it short: 3 lines.")}
	rich["resources"] = []any{
		map[string]any{"type": "github_repository", "url": "https://github.com/example/ops",
			"checkout": map[string]any{"type": "branch", "name": "main"}, "mount_path": "/workspace/ops", "authorization_token": "ghp_original"},
		map[string]any{"type": "file", "file_id": "file_1"},
	}
	rich["vault_ids"] = []any{"vlt_ops"}
	rich["metadata"] = map[string]any{"release": "2026-01-01", "build": "0042", "on_call": "yes", "n": "1"}
	rich["schedule"] = cronSpec("0 9 * * 1-5", "Europe/Berlin")
	richID := env.createDeployment("rich", rich)
	pausedID := env.createDeployment("paused", minimalDeployment("daily digest/ops"))
	require.NoError(t, env.cli("deployments", "pause", pausedID).err)
	archivedID := env.createDeployment("archived", minimalDeployment("old"))
	require.NoError(t, env.cli("deployments", "archive", archivedID).err)

	dir := filepath.Join(t.TempDir(), "export")
	res := env.cli("deployments", "export", "-o", dir)
	require.NoError(t, res.err, res.stderr)
	assert.Equal(t, "Note: 2 of these deployments belong to no set; their files say adopt: <id>, so the first apply takes them into the set (same ids, runs kept).\n", res.stderr)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	richName, pausedName := "daily-digest-ops-"+richID+".yaml", "daily-digest-ops-"+pausedID+".yaml"
	assert.ElementsMatch(t, []string{richName, pausedName}, names, "archived left out; two equal names both get their id")
	richFile, err := os.ReadFile(filepath.Join(dir, richName))
	require.NoError(t, err)
	assert.NotContains(t, string(richFile), "ghp_original")
	assertGolden(t, "rich.yaml", env.stable(string(richFile)))
	pausedFile, err := os.ReadFile(filepath.Join(dir, pausedName))
	require.NoError(t, err)
	assert.Contains(t, string(pausedFile), "It was paused when exported")
	assert.NotContains(t, string(pausedFile), "\npaused:")

	// The exported files, decoded as apply decodes them, create deployments
	// equal to the originals in every create field.
	docs, err := deployfiles.DecodeDir(dir, deployfiles.Options{LookupEnv: func(name string) (string, bool) {
		return "ghp_new", name == "TOKEN_DAILY_DIGEST_OPS_0"
	}})
	require.NoError(t, err)
	require.Len(t, docs, 2)
	origins := map[string]string{richName: richID, pausedName: pausedID}
	for _, doc := range docs {
		// adopt: is apply's, not the create body's.
		var def map[string]any
		require.NoError(t, json.Unmarshal(doc.Definition, &def))
		assert.Equal(t, origins[doc.Key], def["adopt"], "an unmanaged deployment's file adopts it")
		delete(def, "adopt")
		body, err := json.Marshal(def)
		require.NoError(t, err)
		created, err := newAPIClient(endpoint{socket: env.socket}).post(t.Context(), "/v1/deployments", body)
		require.NoError(t, err, doc.Key)
		original, err := newAPIClient(endpoint{socket: env.socket}).get(t.Context(), deploymentPath(origins[doc.Key]), nil)
		require.NoError(t, err)
		assert.Equal(t, createShape(t, original), createShape(t, created), doc.Key)
	}

	// Naming ids exports those, archived ones refused; an existing file is
	// never overwritten.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "daily-digest-ops.yaml"), []byte("# mine\n"), 0o600))
	res = env.cli("deployments", "export", richID, "-o", dir)
	require.EqualError(t, res.err, "-o "+dir+": daily-digest-ops.yaml already exists: export into an empty directory, or move it away")
	res = env.cli("deployments", "export", archivedID, "-o", t.TempDir())
	require.EqualError(t, res.err, "deployment "+archivedID+" is archived: only live deployments can be exported (apply would create it anew)")
	one := t.TempDir()
	res = env.cli("--json", "deployments", "export", richID, "-o", one)
	require.NoError(t, res.err)
	var written []exportWritten
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &written))
	assert.Equal(t, []exportWritten{{ID: richID, File: filepath.Join(one, "daily-digest-ops.yaml")}}, written)
}

func TestSafeFileNameAndTokenEnvName(t *testing.T) {
	assert.Equal(t, "nightly-report_2.v1", safeFileName("nightly report_2.v1", "depl_1"))
	assert.Equal(t, "etc-passwd", safeFileName("../etc/passwd", "depl_1"))
	assert.Equal(t, "depl_1", safeFileName("...", "depl_1"))
	assert.Equal(t, "depl_1", safeFileName("日本", "depl_1"))
	assert.Equal(t, "TOKEN_DAILY_DIGEST_OPS_0", tokenEnvName("daily digest/ops", 0))
}
