package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// outcome is how a session ended.
type outcome struct {
	status  string          // statusIdle or statusTerminated
	failure *sessionFailure // recorded as a session.error when set
	stderr  []byte          // tail of the harness's stderr
}

// execute runs a session that holds a slot: workspace, resources, harness.
func (b *Backend) execute(run *sessionRun, fromQueue bool) outcome {
	ctx, cancel := context.WithTimeoutCause(run.ctx, run.env.Timeout, errTimedOut)
	defer cancel()
	if fromQueue {
		if context.Cause(ctx) != nil {
			return b.endedBy(ctx, nil, run)
		}
		now := b.cfg.Now()
		if _, err := b.store.appendEvents(run.id, [][]byte{statusEvent(eventStatusRunning, now)}, func(rec *sessionRecord) error {
			rec.Status, rec.StartedAt, rec.UpdatedAt = statusRunning, &now, now
			return nil
		}); err != nil {
			return outcome{status: statusTerminated, failure: failuref("recording the session start: %v", err)}
		}
		b.notify(run.id)
	}
	if err := b.prepareWorkspace(ctx, run); err != nil {
		return b.endedBy(ctx, err, run)
	}
	return b.runHarness(ctx, run)
}

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
				URL: res.URL, Checkout: res.Checkout, Token: res.AuthorizationToken,
				Dir: filepath.Join(run.workspace, m.rel),
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

// endedBy turns the reason a session stopped early into its outcome. A
// canceled context says why better than the error it caused.
func (b *Backend) endedBy(ctx context.Context, err error, run *sessionRun) outcome {
	out := outcome{status: statusTerminated}
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, errInterrupted):
		// The user asked for it: terminated, but not an error.
	case errors.Is(cause, errTimedOut):
		out.failure = failuref("the session exceeded its timeout of %s (environment %s)", run.env.Timeout, run.env.ID)
	case errors.Is(cause, errOutputCapped):
		out.failure = failuref("the harness wrote more than %d bytes to stdout (max_output_bytes of environment %s)",
			run.env.MaxOutputBytes, run.env.ID)
	case errors.Is(cause, errShutdown):
		out.failure = failuref("%v", errShutdown)
	case cause != nil:
		out.failure = failuref("%v", cause)
	default:
		var f *sessionFailure
		if errors.As(err, &f) {
			out.failure = f
		} else if err != nil {
			out.failure = failuref("%v", err)
		}
	}
	return out
}

// finishRun records the end of a session that held a slot and frees it.
func (b *Backend) finishRun(run *sessionRun, out outcome) {
	b.recordEnd(run, out)
	b.sessionEnded(run, true)
}

// recordEnd writes the final events and status of a session.
func (b *Backend) recordEnd(run *sessionRun, out outcome) {
	now := b.cfg.Now()
	var events [][]byte
	if out.failure != nil {
		events = append(events, errorEvent(out.failure, now))
	}
	if out.status == statusIdle {
		events = append(events, idleEvent(now))
	} else {
		events = append(events, statusEvent(eventStatusTerminated, now))
	}
	rec, err := b.store.appendEvents(run.id, events, func(rec *sessionRecord) error {
		rec.Status, rec.UpdatedAt, rec.EndedAt, rec.Process = out.status, now, &now, nil
		return nil
	})
	if err != nil {
		b.log.Error("recording the end of a session", "session_id", run.id, "err", err)
		return
	}
	if len(out.stderr) > 0 {
		if err := b.store.putStderr(run.id, out.stderr); err != nil {
			b.log.Warn("storing harness stderr", "session_id", run.id, "err", err)
		}
	}
	attrs := []any{"session_id", run.id, "status", out.status}
	if rec.StartedAt != nil {
		attrs = append(attrs, "active", now.Sub(*rec.StartedAt).Round(time.Millisecond))
	}
	if out.failure != nil {
		attrs = append(attrs, "error_type", out.failure.Type, "error", out.failure.Message)
	}
	b.log.Info("session finished", attrs...)
}
