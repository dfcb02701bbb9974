package local

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResolveMountPath(t *testing.T) {
	tests := []struct {
		mountPath, fallback string
		want                string
		wantErr             bool
	}{
		{"", "repo", "repo", false},
		{"src/app", "repo", "src/app", false},
		{"./src//app/", "repo", "src/app", false},
		{"/workspace/app", "repo", "app", false},
		{"/workspace", "repo", "", true},
		{"/workspacex/app", "repo", "workspacex/app", false},
		{"/mnt/session/uploads/f", "", "mnt/session/uploads/f", false},
		{"/../../etc", "", "etc", false}, // absolute paths are rooted at the workspace
		{"../outside", "repo", "", true},
		{"a/../../outside", "repo", "", true},
		{"..", "repo", "", true},
		{".", "repo", "", true},
		{"", "", "", true},
		{"a\x00b", "repo", "", true},
		{`a\..\..\b`, "repo", "", true},
	}
	for _, tt := range tests {
		got, err := resolveMountPath(tt.mountPath, tt.fallback)
		if tt.wantErr {
			assert.Error(t, err, "mount_path %q", tt.mountPath)
			continue
		}
		require.NoError(t, err, "mount_path %q", tt.mountPath)
		assert.Equal(t, tt.want, got, "mount_path %q", tt.mountPath)
	}
}

func TestRepositoryName(t *testing.T) {
	for url, want := range map[string]string{
		"https://github.com/acme/widgets":      "widgets",
		"https://github.com/acme/widgets.git":  "widgets",
		"https://github.com/acme/widgets.git/": "widgets",
		"https://github.com/":                  "",
		"https://github.com/acme/..":           "",
	} {
		got, err := repositoryName(url)
		if want == "" {
			assert.Error(t, err, url)
			continue
		}
		require.NoError(t, err, url)
		assert.Equal(t, want, got)
	}
}

func TestFileResourcesStayInTheirDirectories(t *testing.T) {
	dir := t.TempDir()
	files := filepath.Join(dir, "files")
	require.NoError(t, os.Mkdir(files, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte("secret"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(files, "report.txt"), []byte("report"), 0o600))
	require.NoError(t, os.Symlink(filepath.Join(dir, "secret"), filepath.Join(files, "escape")))
	require.NoError(t, os.Mkdir(filepath.Join(files, "subdir"), 0o700))

	require.NoError(t, checkFileID(files, "report.txt"))
	for _, id := range []string{"../secret", "escape", "subdir", "missing", "", ".", "..", "a/b"} {
		assert.Error(t, checkFileID(files, id), "file_id %q", id)
	}
	assert.Error(t, checkFileID("", "report.txt"), "no files directory configured")

	workspace := filepath.Join(dir, "ws")
	require.NoError(t, os.Mkdir(workspace, 0o700))
	require.NoError(t, os.Symlink(dir, filepath.Join(workspace, "link"))) // as a cloned repo could contain
	root, err := os.OpenRoot(workspace)
	require.NoError(t, err)
	defer root.Close()
	require.NoError(t, copyFileResource(files, "report.txt", root, "uploads/report.txt"))
	data, err := os.ReadFile(filepath.Join(workspace, "uploads", "report.txt"))
	require.NoError(t, err)
	assert.Equal(t, "report", string(data))
	assert.Error(t, copyFileResource(files, "report.txt", root, "link/planted"), "a symlink must not lead out of the workspace")
	assert.NoFileExists(t, filepath.Join(dir, "planted"))
	assert.Error(t, copyFileResource(files, "report.txt", root, "uploads/report.txt"), "never overwrite")
}

// fixedClock is a settable clock.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func TestPruneWorkspaces(t *testing.T) {
	// The clock sits years back, so the janitor (which prunes as of the
	// clock) never races the explicit calls below.
	ended := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &fixedClock{t: ended}
	rig := newRig(t, []Agent{shAgent("agent_quick", `echo hi > made-by-harness; exit 1`), shAgent("agent_block", blockingScript)},
		func(c *Config) { c.Now = clock.Now })
	done := rig.create("agent_quick", nil)
	rig.waitDone(done)
	running := rig.create("agent_block", nil)
	rig.waitForText(running, "ready ")
	doneWS := filepath.Join(rig.cfg.WorkspaceDir, done)
	runningWS := filepath.Join(rig.cfg.WorkspaceDir, running)
	require.FileExists(t, filepath.Join(doneWS, "made-by-harness"))

	n, err := rig.b.PruneWorkspaces(ended.Add(DefaultWorkspaceRetention - time.Second))
	require.NoError(t, err)
	assert.Equal(t, 0, n)
	assert.DirExists(t, doneWS)

	n, err = rig.b.PruneWorkspaces(ended.Add(DefaultWorkspaceRetention))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.NoDirExists(t, doneWS)
	assert.DirExists(t, runningWS, "a running session keeps its workspace")
	rec := mustGet(t, rig, done)
	assert.Equal(t, statusTerminated, rec.Status, "the record and events are kept")
	assert.NotNil(t, rec.WorkspaceRemovedAt)

	n, err = rig.b.PruneWorkspaces(ended.Add(DefaultWorkspaceRetention))
	require.NoError(t, err)
	assert.Equal(t, 0, n, "pruning is idempotent")

	// A workspace no record refers to goes once it is old enough; other
	// directories are not ours to touch.
	orphan := filepath.Join(rig.cfg.WorkspaceDir, newID(sessionIDPrefix))
	require.NoError(t, os.Mkdir(orphan, 0o700))
	other := filepath.Join(rig.cfg.WorkspaceDir, "keep-me")
	require.NoError(t, os.Mkdir(other, 0o700))
	n, err = rig.b.PruneWorkspaces(time.Now())
	require.NoError(t, err)
	assert.Equal(t, 0, n, "too young")
	n, err = rig.b.PruneWorkspaces(time.Now().Add(DefaultWorkspaceRetention + time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.NoDirExists(t, orphan)
	assert.DirExists(t, other)
	assert.DirExists(t, runningWS)
}

// mount_path is shown as the official API shows it: under /workspace, never
// the host path the record keeps; a path a create request accepts back.
func TestContainerMountPath(t *testing.T) {
	for _, tt := range []struct{ host, want string }{
		{"/var/lib/sandbox0d/workspaces/sesn_abc/repo", "/workspace/repo"},
		{"/var/lib/sandbox0d/workspaces/sesn_abc/uploads/notes.txt", "/workspace/uploads/notes.txt"},
		{"/moved/elsewhere/sesn_abc/a/sesn_abc/b", "/workspace/a/sesn_abc/b"},
		{"/not/a/workspace/file", "/not/a/workspace/file"},
	} {
		got := containerMountPath("sesn_abc", tt.host)
		if got != tt.want {
			t.Errorf("containerMountPath(%q) = %q, want %q", tt.host, got, tt.want)
		}
		if tt.host != tt.want {
			if rel, err := resolveMountPath(got, ""); err != nil || "/workspace/"+rel != got {
				t.Errorf("resolveMountPath(%q) = %q, %v: the shown path must name the same place", got, rel, err)
			}
		}
	}
}
