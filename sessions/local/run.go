package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// prepareWorkspace creates the workspace and materializes the resources in
// order. Tokens are dropped from memory once the clones are done.
func (b *Backend) prepareWorkspace(ctx context.Context, run *sessionRun) error {
	defer func() {
		for i := range run.mounts {
			run.mounts[i].resource.AuthorizationToken = ""
		}
	}()
	if err := os.MkdirAll(b.cfg.WorkspaceDir, 0o700); err != nil {
		return failuref("creating the workspace directory: %v", err)
	}
	if err := os.Mkdir(run.workspace, 0o700); err != nil {
		return failuref("creating the workspace: %v", err)
	}
	root, err := os.OpenRoot(run.workspace)
	if err != nil {
		return failuref("opening the workspace: %v", err)
	}
	defer root.Close()
	for i, m := range run.mounts {
		if cause := context.Cause(ctx); cause != nil {
			return cause
		}
		res := m.resource
		switch res.Type {
		case "github_repository":
			if err := prepareMountDir(root, m.rel); err != nil {
				return &sessionFailure{Type: errorTypeRepoClone, RepositoryURL: res.URL,
					Message: fmt.Sprintf("resources[%d]: cannot clone %s into %s: %v", i, res.URL, m.rel, err)}
			}
			if err := b.cloneRepository(ctx, run.workspace, cloneSpec{
				URL: res.URL, Checkout: res.Checkout, Token: b.cloneToken(run.id, m.resourceID, res.AuthorizationToken),
				Dir:       filepath.Join(run.workspace, m.rel),
				SessionID: run.id, Env: run.env,
			}); err != nil {
				return err
			}
		case "file":
			if err := copyFileResource(b.cfg.FilesDir, res.FileID, root, m.rel); err != nil {
				return failuref("resources[%d]: copying file %q to %s: %v", i, res.FileID, m.rel, err)
			}
		}
	}
	return nil
}
