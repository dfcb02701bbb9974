package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newAPIKeysRevokeCommand(cc *commandContext) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key; requests using it are refused from then on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireID("API key", args[0]); err != nil {
				return err
			}
			client, err := cc.client(cmd)
			if err != nil {
				return err
			}
			data, err := client.post(cmd.Context(), apiKeyRevokePath(args[0]), nil)
			if err != nil {
				return err
			}
			if cc.json {
				return printJSON(cmd.OutOrStdout(), data)
			}
			var key apiKey
			if err := decodeJSON(data, "an API key", &key); err != nil {
				return err
			}
			when := "now"
			if key.RevokedAt != nil {
				when = utcShort(*key.RevokedAt)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Revoked API key %s (%s) at %s.\n", oneLine(key.ID), oneLine(key.Name), when)
			return err
		},
	}
}
