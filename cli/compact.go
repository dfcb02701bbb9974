package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sandbox0/sandbox0d/daemon"
)

// newCompactCommand reclaims the space that run retention freed, offline.
func newCompactCommand() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "compact --data-dir DIR",
		Short: "Rewrite a stopped daemon's database into a compact file (reclaims space freed by retention)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataDir == "" {
				return fmt.Errorf("--data-dir is required")
			}
			before, after, err := daemon.CompactOffline(dataDir)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Compacted: %d bytes → %d bytes.\n", before, after)
			return err
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "data directory of a stopped daemon")
	return cmd
}
