package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sandbox0/sandbox0d/internal/diskspace"
	"github.com/sandbox0/sandbox0d/internal/wire"
)

// defaultWorkspacePoll is how often a running turn's workspace is measured
// against limits.workspace_bytes (and, while the data dir's file system is
// low, for growth).
const defaultWorkspacePoll = 2 * time.Second

// workspaceFullError stops a turn whose workspace grew over its limit.
type workspaceFullError struct {
	limit int64
	env   string
}

func (e *workspaceFullError) Error() string {
	return fmt.Sprintf("the workspace grew past %d bytes (%d MiB), limits.workspace_bytes of environment %s; "+
		"the session was stopped (raise the limit, or -1 for none, if the work needs more)", e.limit, e.limit>>20, e.env)
}

// watchWorkspace measures the turn's workspace every b.workspacePoll until
// the returned function is called, stopping the turn when the workspace
// is over its limit, or when it keeps growing while the data dir's file
// system is below its reserve. The returned function ends the polling and
// measures once more: non-nil when the workspace is over its limit.
func (b *Backend) watchWorkspace(ctx context.Context, run *sessionRun, stop context.CancelCauseFunc) func() error {
	limit := run.env.Limits.WorkspaceBytes
	if limit < 0 && b.cfg.Disk == nil {
		return func() error { return nil }
	}
	full := &workspaceFullError{limit: limit, env: run.env.ID}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		ticker := time.NewTicker(b.workspacePoll)
		defer ticker.Stop()
		last := int64(-1)
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			size, over := workspaceUsage(run.workspace, limit)
			if over {
				stop(full)
				return
			}
			if low := b.diskErr(); low != nil && last >= 0 && size > last {
				stop(low)
				return
			}
			last = size
		}
	}()
	return func() error {
		close(done)
		<-finished
		if limit < 0 {
			return nil
		}
		if _, over := workspaceUsage(run.workspace, limit); over {
			return full
		}
		return nil
	}
}

// Bounds of one measurement of a workspace.
const (
	// minEntryBytes is what every file and directory counts at least: a
	// block, and an inode is not free either. It also bounds a walk: a
	// workspace of small files is over its limit after limit/minEntryBytes
	// entries, however many more there are.
	minEntryBytes = 4096
	// maxWalkEntries bounds a walk without a limit (only the growth check
	// of a low disk needs it): past it the size is what was counted so far.
	maxWalkEntries = 1 << 21
)

// workspaceUsage is the disk dir's tree uses (allocated blocks, so sparse
// files count what they take, at least minEntryBytes per entry; hard links
// once), and whether it is over limit (negative: none). The walk stops as
// soon as it is over, so a workspace far over its limit costs no more than
// one at it; it follows no symbolic links and leaves the tree as it is.
func workspaceUsage(dir string, limit int64) (int64, bool) {
	var total int64
	entries := 0
	seen := map[[2]uint64]bool{}
	over := false
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // vanished or unreadable: nothing to count
		}
		if entries++; limit < 0 && entries > maxWalkEntries {
			return fs.SkipAll
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		size := info.Size()
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			size = int64(st.Blocks) * 512
			if !d.IsDir() && uint64(st.Nlink) > 1 {
				key := [2]uint64{uint64(st.Dev), uint64(st.Ino)}
				if seen[key] {
					return nil
				}
				seen[key] = true
			}
		}
		total += max(size, minEntryBytes)
		if limit >= 0 && total > limit {
			over = true
			return fs.SkipAll
		}
		return nil
	})
	return total, over
}

// diskErr is non-nil while the data dir's file system is below its
// reserve.
func (b *Backend) diskErr() error {
	if b.cfg.Disk == nil {
		return nil
	}
	return b.cfg.Disk.Err()
}

// observeDisk tells the disk guard of a failed write.
func (b *Backend) observeDisk(err error) {
	if b.cfg.Disk != nil && err != nil {
		b.cfg.Disk.Observe(err)
	}
}

// diskFull answers 507 when err says the data dir's file system is below
// its reserve or full, and reports whether it did: a write refused for lack
// of space says so, instead of a bare 500.
func (b *Backend) diskFull(w http.ResponseWriter, err error) bool {
	if err == nil {
		return false
	}
	var low *diskspace.LowError
	switch {
	case errors.As(err, &low):
		wire.WriteError(w, http.StatusInsufficientStorage, low.Error())
	case errors.Is(err, syscall.ENOSPC):
		b.observeDisk(err)
		b.log.Error("a write failed: the disk is full", "error", err)
		wire.WriteError(w, http.StatusInsufficientStorage, "the data directory's file system is full (no space left on device): nothing was written; free space there (disk.min_free keeps a reserve) and retry")
	default:
		return false
	}
	return true
}
