package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newKeysCommand(cc *commandContext) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the daemon's secret-sealing key",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newKeysRotateCommand(cc))
	return cmd
}

func newKeysRotateCommand(cc *commandContext) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate",
		Short: "Generate a new sealing key in the running daemon and re-seal every stored secret with it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
