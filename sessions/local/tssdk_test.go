package local

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/internal/tssdktest"
)

// The official TypeScript SDK reads a local session: every
// session.status_idle, listed or streamed, has stop_details null (present,
// so a `!== null` guard works); unset strings are null; the agent's model is
// not made up; mount_path is the path inside the workspace; event ids are
// in the official alphabet (request ids: httpapi's TestTypeScriptSDK). Needs node and `npm ci --prefix
// testdata/tssdk` (CI does both); skipped otherwise.
func TestTypeScriptSDKReadsSession(t *testing.T) {
	ts := tssdktest.Require(t)
	rig := newRig(t, []Agent{shAgent("agent_ts", `echo "turn $SANDBOX0D_TURN"`)}, nil)
	require.NoError(t, os.WriteFile(filepath.Join(rig.cfg.FilesDir, "notes.txt"), []byte("notes"), 0o600))
	id := rig.create("agent_ts", func(req *sessions.CreateRequest) {
		req.Resources = []sessions.Resource{{Type: "file", FileID: "notes.txt", MountPath: "docs/notes.txt"}}
	})
	rig.waitDone(id)

	out := ts.Run(t, "sessions.mjs", "SANDBOX0D_URL="+rig.srv.URL, "SANDBOX0D_SESSION="+id)

	type idleDetails struct {
		Present bool `json:"present"`
		IsNull  bool `json:"isNull"`
	}
	var got struct {
		IDs          []string      `json:"ids"`
		ListedIdle   []idleDetails `json:"listedIdle"`
		StreamedIdle idleDetails   `json:"streamedIdle"`
		Session      struct {
			Title       *string  `json:"title"`
			Description *string  `json:"description"`
			System      *string  `json:"system"`
			Model       *string  `json:"model"`
			MountPaths  []string `json:"mountPaths"`
		} `json:"session"`
	}
	require.NoError(t, json.Unmarshal(out, &got), "%s", out)
	require.Len(t, got.ListedIdle, 1, "turn 1's idle in the list")
	assert.Equal(t, idleDetails{Present: true, IsNull: true}, got.ListedIdle[0], "listed idle: stop_details null")
	assert.Equal(t, idleDetails{Present: true, IsNull: true}, got.StreamedIdle, "streamed idle: stop_details null")
	assert.Nil(t, got.Session.Title)
	assert.Nil(t, got.Session.Description)
	assert.Nil(t, got.Session.System)
	require.NotNil(t, got.Session.Model, "model.id is a string in the types")
	assert.Equal(t, "", *got.Session.Model, "a command agent without a model: unknown, not a made-up id")
	assert.Equal(t, []string{"/workspace/docs/notes.txt"}, got.Session.MountPaths)
	require.NotEmpty(t, got.IDs)
	for _, evID := range got.IDs {
		assert.Regexp(t, `^sevt_[0-9A-Za-z]{24,}$`, evID)
	}
}
