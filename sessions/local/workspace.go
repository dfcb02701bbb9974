package local

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// upstreamWorkspaceRoot is where the hosted API mounts repositories; an
// absolute mount_path under it lands at the same place in a local workspace.
const upstreamWorkspaceRoot = "/workspace"

// containerMountPath renders a resource's mount_path as the official API
// does: the path the session's agent sees, under /workspace (which
// resolveMountPath reads back as the same place), never a path on this
// machine. The record keeps the host path (WorkspaceDir/<session>/<rel>); the
// part after the session's directory is what the workspace holds, whatever
// WorkspaceDir was when the record was written.
func containerMountPath(sessionID, hostPath string) string {
	marker := string(filepath.Separator) + sessionID + string(filepath.Separator)
	i := strings.Index(hostPath, marker)
	if i < 0 {
		return hostPath // not under a workspace: nothing better to show
	}
	return path.Join(upstreamWorkspaceRoot, filepath.ToSlash(hostPath[i+len(marker):]))
}

var errEscapesWorkspace = errors.New("escapes the session workspace")

// resolveMountPath maps a resource's mount_path to a path relative to the
// workspace. Relative paths are taken as they are. Absolute paths are read as
// paths inside the session's container: "/workspace/x" and "/x" both become
// "x". A path that leaves the workspace, or is the workspace itself, is an
// error.
func resolveMountPath(mountPath, fallback string) (string, error) {
	p := mountPath
	if p == "" {
		p = fallback
	}
	if strings.ContainsRune(p, 0) || strings.Contains(p, `\`) {
		return "", fmt.Errorf("mount_path %q: contains a NUL byte or a backslash", p)
	}
	if path.IsAbs(p) {
		p = path.Clean(p)
		if rest, ok := strings.CutPrefix(p, upstreamWorkspaceRoot); ok && (rest == "" || rest[0] == '/') {
			p = rest
		}
		p = strings.TrimPrefix(p, "/")
	}
	p = path.Clean(p)
	if p == "." || p == "" {
		return "", fmt.Errorf("mount_path %q: is the workspace itself; name a directory inside it", mountPath)
	}
	if !filepath.IsLocal(p) {
		return "", fmt.Errorf("mount_path %q: %w", mountPath, errEscapesWorkspace)
	}
	return p, nil
}

// repositoryName is the default mount directory of a repository: the last
// path element of its URL without ".git".
func repositoryName(repoURL string) (string, error) {
	u, err := url.Parse(repoURL)
	if err != nil {
		return "", fmt.Errorf("url %q: %w", repoURL, err)
	}
	name := strings.TrimSuffix(path.Base(strings.TrimRight(u.Path, "/")), ".git")
	if !isPlainFileName(name) || name == "/" {
		return "", fmt.Errorf("url %q: cannot derive a directory name; set mount_path", repoURL)
	}
	return name, nil
}

func defaultFileMount(fileID string) string { return "uploads/" + fileID }

// checkFileID reports whether fileID names a regular file in filesDir. Only
// plain names are accepted and the lookup cannot leave filesDir, even
// through a symlink.
func checkFileID(filesDir, fileID string) error {
	if filesDir == "" {
		return errors.New("no files directory is configured (local.files_dir)")
	}
	if !isPlainFileName(fileID) {
		return fmt.Errorf("%q is not a file name", fileID)
	}
	root, err := os.OpenRoot(filesDir)
	if err != nil {
		return err
	}
	defer root.Close()
	info, err := root.Stat(fileID)
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%q is not a regular file", fileID)
	}
	return nil
}

// copyFileResource copies filesDir/fileID to rel inside the workspace. Both
// sides go through os.Root so neither a crafted id nor a symlink in an
// already cloned repository can write outside the workspace.
func copyFileResource(filesDir, fileID string, workspace *os.Root, rel string) error {
	if err := checkFileID(filesDir, fileID); err != nil {
		return err
	}
	files, err := os.OpenRoot(filesDir)
	if err != nil {
		return err
	}
	defer files.Close()
	src, err := files.Open(fileID)
	if err != nil {
		return err
	}
	defer src.Close()
	if dir := path.Dir(rel); dir != "." {
		if err := workspace.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	dst, err := workspace.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// prepareMountDir makes the parents of a clone target and checks that the
// target itself is free, all without following a symlink out of the
// workspace.
func prepareMountDir(workspace *os.Root, rel string) error {
	if dir := path.Dir(rel); dir != "." {
		if err := workspace.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	if _, err := workspace.Lstat(rel); err == nil {
		return fmt.Errorf("%s already exists in the workspace", rel)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// PruneWorkspaces deletes the workspaces of sessions terminated more than
// local.workspace_retention before now (an idle session keeps its workspace:
// its next turn continues there; local.session_retention removes it), and workspace directories no session
// record refers to. Session records and events are kept. It returns how many
// workspaces it removed. A janitor inside the backend also runs it
// periodically.
func (b *Backend) PruneWorkspaces(now time.Time) (int, error) {
	cutoff := now.Add(-b.cfg.WorkspaceRetention)
	expired, err := b.store.sessionsWhere(func(rec *sessionRecord) bool {
		return isFinished(rec.Status) && rec.EndedAt != nil && !rec.EndedAt.After(cutoff) &&
			rec.WorkspaceRemovedAt == nil
	})
	if err != nil {
		return 0, fmt.Errorf("pruning workspaces: %w", err)
	}
	removed := 0
	var errs []error
	for _, rec := range expired {
		if err := os.RemoveAll(rec.Workspace); err != nil {
			errs = append(errs, fmt.Errorf("session %s: removing workspace: %w", rec.ID, err))
			continue
		}
		if _, err := b.store.update(rec.ID, func(r *sessionRecord) error {
			r.WorkspaceRemovedAt = &now
			return nil
		}); err != nil && !errors.Is(err, errSessionNotFound) {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	orphans, err := b.pruneOrphanWorkspaces(cutoff)
	removed += orphans
	if err != nil {
		errs = append(errs, err)
	}
	return removed, errors.Join(errs...)
}

// pruneOrphanWorkspaces removes session-shaped directories that no record
// refers to (left by a delete that failed half way), once they are older
// than the retention.
func (b *Backend) pruneOrphanWorkspaces(cutoff time.Time) (int, error) {
	entries, err := os.ReadDir(b.cfg.WorkspaceDir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("pruning workspaces: %w", err)
	}
	removed := 0
	for _, entry := range entries {
		if !entry.IsDir() || !isSessionID(entry.Name()) {
			continue
		}
		if _, err := b.store.get(entry.Name()); !errors.Is(err, errSessionNotFound) {
			continue
		}
		info, err := entry.Info()
		if err != nil || info.ModTime().After(cutoff) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(b.cfg.WorkspaceDir, entry.Name())); err != nil {
			return removed, fmt.Errorf("removing orphan workspace %s: %w", entry.Name(), err)
		}
		removed++
	}
	return removed, nil
}
