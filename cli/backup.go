package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/sandbox0/sandbox0d/store"
)

func newBackupCommand(cc *commandContext) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "backup -o FILE",
		Short: "Copy the daemon's live database to FILE and check it (socket only; -o - writes to stdout)",
		Long: "Copy the daemon's live database (a consistent bbolt snapshot) to FILE. The copy is\n" +
			"written to FILE.tmp, synced, checked with bbolt's consistency check and only then\n" +
			"renamed to FILE, so FILE is never a partial or failed backup. -o - streams the\n" +
			"copy to stdout without a check. Backups are served only over the Unix socket.",
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
			n, err := saveCheckedBackup(output, resp.Body)
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
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

// saveCheckedBackup streams src to path.tmp, syncs it, runs the bbolt
// consistency check on it and renames it to path. A backup that fails the
// check is left at path.tmp for inspection and never replaces path.
func saveCheckedBackup(path string, src io.Reader) (int64, error) {
	tmp := path + ".tmp"
	// A backup holds every deployment and the sealed secrets: owner only.
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", tmp, err)
	}
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
	if err := os.Rename(tmp, path); err != nil {
		return n, fmt.Errorf("rename %s to %s: %w", tmp, path, err)
	}
	// The rename is durable only once the directory entry is on disk.
	if err := syncDir(filepath.Dir(path)); err != nil {
		return n, err
	}
	return n, nil
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
