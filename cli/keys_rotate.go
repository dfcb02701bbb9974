package cli

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/sandbox0/sandbox0d/daemon"
)

func newKeysCommand(cc *commandContext) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the daemon's secret-sealing key",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newKeysRotateCommand(cc), newKeysGenerateCommand(), newKeysForgetCommand())
	return cmd
}

// newKeysGenerateCommand writes a fresh identity file, e.g. for the systemd
// credential before the first start.
func newKeysGenerateCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "generate -o FILE",
		Short: "Write a new age identity file (mode 0600) for sealing secrets; never overwrites",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("-o FILE is required")
			}
			recipient, err := daemon.GenerateIdentity(out, slog.New(slog.DiscardHandler))
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Wrote %s (recipient %s). Back it up: without it, sealed tokens cannot be opened.\n", out, recipient)
			return err
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "identity file to create")
	return cmd
}

func newKeysRotateCommand(cc *commandContext) *cobra.Command {
	var offline bool
	var dataDir, identityFile string
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Generate a new sealing key in the running daemon (or, with --offline, in a stopped data dir) and re-seal every stored secret with it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if offline {
				if dataDir == "" {
					return fmt.Errorf("--offline needs --data-dir")
				}
				recipient, n, err := daemon.RotateOffline(dataDir, identityFile, slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)))
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "New recipient: %s\n", recipient)
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "Re-sealed %d %s with the new key.\n", n, plural(n, "secret", "secrets"))
				return err
			}
			client, err := cc.client(cmd)
			if err != nil {
				return err
			}
			data, err := client.post(cmd.Context(), "/admin/keys/rotate", nil)
			if err != nil {
				return err
			}
			if cc.json {
				return printJSON(cmd.OutOrStdout(), data)
			}
			var rotation keyRotation
			if err := decodeJSON(data, "the key rotation result", &rotation); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "New recipient: %s\n", oneLine(rotation.Recipient))
			_, err = fmt.Fprintf(w, "Re-sealed %d %s with the new key.\n", rotation.Resealed, plural(rotation.Resealed, "secret", "secrets"))
			return err
		},
	}
	cmd.Flags().BoolVar(&offline, "offline", false, "rotate a stopped daemon's data dir directly")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "data dir for --offline")
	cmd.Flags().StringVar(&identityFile, "identity-file", "", "identity file for --offline (default <data-dir>/keys/identity.age.txt)")
	return cmd
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
