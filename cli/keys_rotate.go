package cli

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

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
	var offline, etcd bool
	var dataDir, identityFile string
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Generate a new sealing key in the running daemon (or, with --offline, in a stopped data dir) and re-seal every stored secret with it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if etcd {
				if offline {
					return fmt.Errorf("--etcd and --offline: choose one (--offline rotates a stopped box's bbolt file, --etcd the cluster's store)")
				}
				cfg, err := daemon.LoadConfig(viper.New(), cc.config)
				if err != nil {
					return err
				}
				recipient, n, err := daemon.RotateCluster(cfg, identityFile, slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)))
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "New recipient: %s\n", recipient)
				fmt.Fprintf(cmd.OutOrStdout(), "Re-sealed %d %s with the new key.\n", n, plural(n, "secret", "secrets"))
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "Install %s on every node (as its identity credential or file) and restart or reload it; until then a node refuses to seal.\n", identityFile)
				return err
			}
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
	cmd.Flags().StringVar(&identityFile, "identity-file", "", "identity file for --offline (default <data-dir>/keys/identity.age.txt) or --etcd (required: a writable copy of the cluster's identity)")
	cmd.Flags().BoolVar(&etcd, "etcd", false, "rotate the cluster's secrets in etcd (store.etcd.* of --config) with --identity-file, e.g. when the nodes' identity is a systemd credential; nodes may keep running")
	return cmd
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
