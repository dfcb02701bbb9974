package cli

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/store"
)

func newBackupCommand(cc *commandContext) *cobra.Command {
	var output string
	var force bool
	cmd := &cobra.Command{
		Use:   "backup -o FILE",
		Short: "Copy the daemon's live database to FILE and check it (socket only; -o - writes to stdout)",
		Long: "Copy the daemon's live database (a consistent bbolt snapshot) to FILE. The copy is\n" +
			"written to a new file of a random name next to FILE (mode 0600), synced, checked\n" +
			"with bbolt's consistency check and only then renamed to FILE, so FILE is never a\n" +
			"partial or failed backup. An existing FILE is replaced only with --force; FILE may\n" +
			"never be the live database or lie inside the daemon's data directory. -o - streams the copy to stdout without a check. Backups\n" +
			"are served only over the Unix socket.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output == "" {
				return errors.New("-o: an output file is required (use - for stdout)")
			}
			ep, err := cc.resolveEndpoint(cmd)
			if err != nil {
				return err
			}
			if !ep.viaSocket() {
				return fmt.Errorf("backup is only served over the daemon's Unix socket, not over TCP (%s): "+
					"drop --addr and unset %s, and pass --socket PATH if needed", ep.baseURL, envAddr)
			}
			resp, err := newAPIClient(ep).send(cmd.Context(), http.MethodGet, "/admin/backup", nil, nil)
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			defer resp.Body.Close()
			if output == "-" {
				n, err := io.Copy(cmd.OutOrStdout(), resp.Body)
				if err != nil {
					return fmt.Errorf("backup: stream to stdout after %d bytes: %w", n, err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d bytes to stdout (no consistency check)\n", n)
				return nil
			}
			live := liveFiles{
				dataDir:  resp.Header.Get(daemon.BackupDataDirHeader),
				database: resp.Header.Get(daemon.BackupDatabaseHeader),
			}
			if err := live.refuse(output); err != nil {
				return err
			}
			if _, err := os.Lstat(output); err == nil && !force {
				return fmt.Errorf("-o: %s already exists; pass --force to replace it", output)
			}
			n, err := saveCheckedBackup(output, resp.Body, force)
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "wrote %d bytes to %s\n", n, output)
			fmt.Fprintln(out, "consistency check: ok")
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "file to write the backup to, or - for stdout (required)")
	cmd.Flags().BoolVar(&force, "force", false, "replace FILE if it exists")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

// liveFiles are the daemon's data directory and database, as it reports
// them. Renaming a backup over the live database would unlink the file the
// daemon keeps writing (everything after it is lost at restart) and free its
// lock for a second daemon, so such targets are refused.
type liveFiles struct {
	dataDir, database string
}

func (l liveFiles) refuse(target string) error {
	abs, err := filepath.Abs(target)
	if err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	// Compare real paths: a symlinked directory must not hide the data dir.
	dir := realPath(filepath.Dir(abs))
	resolved := filepath.Join(dir, filepath.Base(abs))
	if l.database != "" {
		if sameFile(resolved, l.database) || resolved == realPath(l.database) {
			return fmt.Errorf("-o: %s is the daemon's live database; write the backup outside %s", target, l.dataDir)
		}
	}
	if l.dataDir != "" {
		if inside(resolved, realPath(l.dataDir)) {
			return fmt.Errorf("-o: %s is inside the daemon's data directory %s; write the backup elsewhere", target, l.dataDir)
		}
	}
	return nil
}

func realPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return filepath.Clean(p)
}

func sameFile(a, b string) bool {
	ia, err := os.Stat(a)
	if err != nil {
		return false
	}
	ib, err := os.Stat(b)
	return err == nil && os.SameFile(ia, ib)
}

// inside reports whether path is dir or below it.
func inside(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// saveCheckedBackup streams src to a fresh temporary file next to path,
// syncs it, runs the bbolt consistency check on it and moves it to path. A
// backup that fails the check is left at the temporary file for inspection
// and never replaces path. Without force, an existing path is never
// replaced, even one created meanwhile.
func saveCheckedBackup(path string, src io.Reader, force bool) (int64, error) {
	f, err := createBackupTemp(path)
	if err != nil {
		return 0, err
	}
	tmp := f.Name()
	n, err := io.Copy(f, src)
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		os.Remove(tmp)
		return n, fmt.Errorf("download to %s failed after %d bytes: %w", tmp, n, err)
	}
	if err := store.VerifyFile(tmp); err != nil {
		return n, fmt.Errorf("consistency check of the %d bytes received failed (kept at %s for inspection): %w", n, tmp, err)
	}
	if err := moveInto(tmp, path, force); err != nil {
		return n, err
	}
	// The rename is durable only once the directory entry is on disk.
	if err := syncDir(filepath.Dir(path)); err != nil {
		return n, err
	}
	return n, nil
}

// moveInto renames tmp to path; without force it links instead, which
// fails atomically when path exists.
func moveInto(tmp, path string, force bool) error {
	if force {
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("rename %s to %s: %w", tmp, path, err)
		}
		return nil
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s appeared while the backup was written; the backup is kept at %s (pass --force to replace)", path, tmp)
		}
		return fmt.Errorf("link %s to %s: %w", tmp, path, err)
	}
	return os.Remove(tmp)
}

// createBackupTemp creates a new file of a random name in path's directory,
// mode 0600. O_EXCL|O_NOFOLLOW: a name someone planted there (a symlink to
// another file, a world-readable file) is never opened, so the database is
// never written through it nor readable by others.
func createBackupTemp(path string) (*os.File, error) {
	dir, base := filepath.Split(path)
	for range 100 {
		var rnd [8]byte
		_, _ = rand.Read(rnd[:])
		tmp := filepath.Join(dir, "."+base+"."+hex.EncodeToString(rnd[:])+".tmp")
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("create a temporary file next to %s: %w", path, err)
		}
		// A backup holds every deployment and the sealed secrets: owner
		// only, whatever the umask.
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			os.Remove(tmp)
			return nil, fmt.Errorf("chmod %s: %w", tmp, err)
		}
		return f, nil
	}
	return nil, fmt.Errorf("create a temporary file next to %s: no free name", path)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s to sync it: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
