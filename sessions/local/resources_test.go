package local

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/sessions"
)

// notesScript blocks on the prompt "block", and otherwise prints the file
// a test adds as a resource.
const notesScript = `if [ "$SANDBOX0D_PROMPT" = block ]; then echo "ready $$"; sleep 1000 & wait; fi
cat docs/notes.txt 2>/dev/null || echo "no notes"`

func apiStatus(t *testing.T, err error) (int, string) {
	t.Helper()
	var apiErr *anthropic.Error
	require.ErrorAs(t, err, &apiErr)
	return apiErr.StatusCode, apiErr.RawJSON()
}

// A file added to an idle session through the SDK is listed, retrieved,
// copied into the workspace before the next turn (not before), and a
// delete removes it from the session and the workspace.
func TestSDKSessionResourcesAddedFileMaterializedBeforeNextTurn(t *testing.T) {
	rig := newRig(t, []Agent{shAgent("agent_notes", notesScript)}, nil)
	require.NoError(t, os.WriteFile(filepath.Join(rig.cfg.FilesDir, "notes.txt"), []byte("remember the milk"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(rig.cfg.FilesDir, "other.txt"), []byte("other"), 0o600))
	ctx := t.Context()
	id := rig.create("agent_notes", func(req *sessions.CreateRequest) { req.InitialEvents = nil })
	rig.waitDone(id)
	workspace := filepath.Join(rig.cfg.WorkspaceDir, id)
	notes := filepath.Join(workspace, "docs", "notes.txt")

	added, err := rig.client.Beta.Sessions.Resources.Add(ctx, id, anthropic.BetaSessionResourceAddParams{
		BetaManagedAgentsFileResourceParams: anthropic.BetaManagedAgentsFileResourceParams{
			FileID: "notes.txt", MountPath: anthropic.String("docs/notes.txt")}})
	require.NoError(t, err)
	assert.Equal(t, "notes.txt", added.FileID)
	assert.Regexp(t, `^sesrsc_[0-9A-Za-z]{24}$`, added.ID)
	assert.False(t, added.CreatedAt.IsZero())
	assert.Equal(t, added.CreatedAt, added.UpdatedAt)
	assert.NoFileExists(t, notes, "copied by the next turn, not by the add")

	second, err := rig.client.Beta.Sessions.Resources.Add(ctx, id, anthropic.BetaSessionResourceAddParams{
		BetaManagedAgentsFileResourceParams: anthropic.BetaManagedAgentsFileResourceParams{FileID: "other.txt"}})
	require.NoError(t, err)

	// List: all when no limit; pages of one with a limit.
	page, err := rig.client.Beta.Sessions.Resources.List(ctx, id, anthropic.BetaSessionResourceListParams{})
	require.NoError(t, err)
	require.Len(t, page.Data, 2)
	assert.Equal(t, added.ID, page.Data[0].ID)
	assert.Equal(t, "file", page.Data[0].Type)
	assert.Empty(t, page.NextPage)
	page, err = rig.client.Beta.Sessions.Resources.List(ctx, id, anthropic.BetaSessionResourceListParams{Limit: anthropic.Int(1)})
	require.NoError(t, err)
	require.Len(t, page.Data, 1)
	require.NotEmpty(t, page.NextPage)
	page, err = page.GetNextPage()
	require.NoError(t, err)
	require.Len(t, page.Data, 1)
	assert.Equal(t, second.ID, page.Data[0].ID)
	assert.Empty(t, page.NextPage)

	got, err := rig.client.Beta.Sessions.Resources.Get(ctx, added.ID, anthropic.BetaSessionResourceGetParams{SessionID: id})
	require.NoError(t, err)
	assert.Equal(t, "notes.txt", got.AsFile().FileID)
	sess, err := rig.client.Beta.Sessions.Get(ctx, id, anthropic.BetaSessionGetParams{})
	require.NoError(t, err)
	assert.Len(t, sess.Resources, 2, "the session shows its added resources")

	// The next turn sees the file.
	rig.send(id, textEvent("read"))
	rig.waitDone(id)
	texts := rig.texts(id)
	assert.Equal(t, "remember the milk", texts[len(texts)-1])
	content, err := os.ReadFile(notes)
	require.NoError(t, err)
	assert.Equal(t, "remember the milk", string(content))
	assert.FileExists(t, filepath.Join(workspace, "uploads", "other.txt"), "the default mount path")
	for _, res := range mustGet(t, rig, id).Resources {
		assert.False(t, res.Pending, "%s was materialized", res.ID)
	}

	// Same mount path again: refused, the workspace already has it.
	_, err = rig.client.Beta.Sessions.Resources.Add(ctx, id, anthropic.BetaSessionResourceAddParams{
		BetaManagedAgentsFileResourceParams: anthropic.BetaManagedAgentsFileResourceParams{
			FileID: "other.txt", MountPath: anthropic.String("/workspace/docs/notes.txt")}})
	status, body := apiStatus(t, err)
	assert.Equal(t, http.StatusConflict, status)
	assert.Contains(t, body, "mount_path")

	// An unknown file, and an update of a file resource (only repositories
	// take a token), are 400s that say why.
	_, err = rig.client.Beta.Sessions.Resources.Add(ctx, id, anthropic.BetaSessionResourceAddParams{
		BetaManagedAgentsFileResourceParams: anthropic.BetaManagedAgentsFileResourceParams{FileID: "missing.txt"}})
	status, body = apiStatus(t, err)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "local.files_dir")
	_, err = rig.client.Beta.Sessions.Resources.Update(ctx, added.ID, anthropic.BetaSessionResourceUpdateParams{
		SessionID: id, AuthorizationToken: "ghp_x"})
	status, body = apiStatus(t, err)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "only github_repository resources take a token")

	// Over plain HTTP: a repository says add takes files; an unknown field is named.
	for body, want := range map[string]string{
		`{"type":"github_repository","url":"https://github.com/acme/app"}`: "give the repository in resources when creating the session",
		`{"type":"file","file_id":"notes.txt","mode":"ro"}`:                "mode: unknown field; a file resource takes type, file_id, mount_path",
		`{"type":"file","file_id":"notes.txt","mount_path":"../out"}`:      "escapes the session workspace",
	} {
		resp, err := http.Post(rig.srv.URL+"/v1/sessions/"+id+"/resources", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
		assert.Contains(t, string(msg), want, body)
	}

	// Delete while a turn runs: refused; once idle: gone from the session
	// and the workspace.
	rig.send(id, textEvent("block"))
	rig.waitForText(id, "ready ")
	_, err = rig.client.Beta.Sessions.Resources.Delete(ctx, added.ID, anthropic.BetaSessionResourceDeleteParams{SessionID: id})
	status, body = apiStatus(t, err)
	assert.Equal(t, http.StatusConflict, status)
	assert.Contains(t, body, "user.interrupt")
	_, err = rig.b.interrupt(id)
	require.NoError(t, err)
	rig.waitDone(id)
	deleted, err := rig.client.Beta.Sessions.Resources.Delete(ctx, added.ID, anthropic.BetaSessionResourceDeleteParams{SessionID: id})
	require.NoError(t, err)
	assert.Equal(t, added.ID, deleted.ID)
	assert.Equal(t, "session_resource_deleted", string(deleted.Type))
	assert.NoFileExists(t, notes)
	_, err = rig.client.Beta.Sessions.Resources.Get(ctx, added.ID, anthropic.BetaSessionResourceGetParams{SessionID: id})
	status, _ = apiStatus(t, err)
	assert.Equal(t, http.StatusNotFound, status)
	rig.send(id, textEvent("read"))
	rig.waitDone(id)
	texts = rig.texts(id)
	assert.Equal(t, "no notes", texts[len(texts)-1])
}

// A repository's token rotated (SDK resources.update) while the session
// waits for a slot is the one its clone uses; it is never returned or
// stored.
func TestSDKSessionResourceTokenRotationReachesThePendingClone(t *testing.T) {
	repo := newGitRepo(t)
	rig := newRig(t, []Agent{shAgent("agent_block", blockingScript), shAgent("agent_ls", `ls project`)},
		func(c *Config) { c.MaxConcurrentSessions = 1; allowLoopbackClones(c) })
	ctx := t.Context()
	first := rig.create("agent_block", nil)
	rig.waitForText(first, "ready ")
	id := rig.create("agent_ls", func(req *sessions.CreateRequest) {
		req.Resources = []sessions.Resource{{Type: "github_repository", URL: repo.url, AuthorizationToken: "ghs_revoked"}}
	})
	require.Equal(t, anthropic.BetaManagedAgentsSessionStatusRescheduling, rig.status(id))
	rid := mustGet(t, rig, id).Resources[0].ID

	updated, err := rig.client.Beta.Sessions.Resources.Update(ctx, rid, anthropic.BetaSessionResourceUpdateParams{
		SessionID: id, AuthorizationToken: repo.token})
	require.NoError(t, err)
	assert.Equal(t, rid, updated.ID)
	assert.Equal(t, repo.url, updated.URL)
	assert.NotContains(t, updated.RawJSON(), repo.token)
	assert.True(t, updated.UpdatedAt.After(updated.CreatedAt) || updated.UpdatedAt.Equal(updated.CreatedAt))

	_, err = rig.b.interrupt(first)
	require.NoError(t, err)
	rec := rig.waitDone(id)
	require.Equal(t, statusIdle, rec.Status, rig.dump(id))
	assert.Contains(t, rig.texts(id), "README", "cloned with the rotated token")
	assertNoSecret(t, rig, id, repo.token, nil)
	rig.b.mu.Lock()
	assert.Empty(t, rig.b.rotated, "no rotated token outlives its session's active period")
	rig.b.mu.Unlock()
}

// A file added and then removed from local.files_dir before the next turn
// fails that turn's materialization: the session ends with a session.error
// that names the resource, as a failed copy at creation does.
func TestAddedFileGoneBeforeTheTurnFailsIt(t *testing.T) {
	rig := newRig(t, []Agent{shAgent("agent_notes", notesScript)}, nil)
	src := filepath.Join(rig.cfg.FilesDir, "notes.txt")
	require.NoError(t, os.WriteFile(src, []byte("x"), 0o600))
	id := rig.create("agent_notes", func(req *sessions.CreateRequest) { req.InitialEvents = nil })
	rig.waitDone(id)
	added, err := rig.client.Beta.Sessions.Resources.Add(t.Context(), id, anthropic.BetaSessionResourceAddParams{
		BetaManagedAgentsFileResourceParams: anthropic.BetaManagedAgentsFileResourceParams{FileID: "notes.txt"}})
	require.NoError(t, err)
	require.NoError(t, os.Remove(src))

	rig.send(id, textEvent("read"))
	rec := rig.waitDone(id)
	assert.Equal(t, statusTerminated, rec.Status)
	_, msg := rig.sessionError(id)
	assert.Contains(t, msg, added.ID)
	assert.Contains(t, msg, `copying file "notes.txt"`)
	assert.NotContains(t, rig.texts(id), "no notes", "the harness did not run")
}
