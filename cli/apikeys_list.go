package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
)

func newAPIKeysListCommand(cc *commandContext) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List API keys (never their values)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := cc.client(cmd)
			if err != nil {
				return err
			}
			data, err := client.get(cmd.Context(), "/admin/apikeys", nil)
			if err != nil {
				return err
			}
			if cc.json {
				return printJSON(cmd.OutOrStdout(), data)
			}
			var list apiKeyList
			if err := decodeJSON(data, "the API key list", &list); err != nil {
				return err
			}
			return writeAPIKeyTable(cmd.OutOrStdout(), list.Data, cc.now())
		},
	}
}

func writeAPIKeyTable(w io.Writer, keys []apiKey, now time.Time) error {
	if len(keys) == 0 {
		_, err := fmt.Fprintln(w, "No API keys.")
		return err
	}
	tw := newTable(w)
	writeRow(tw, "ID", "NAME", "CREATED", "LAST USED", "REVOKED")
	for _, k := range keys {
		lastUsed, revoked := "never", "-"
		if k.LastUsedAt != nil {
			lastUsed = relativeTime(*k.LastUsedAt, now)
		}
		if k.RevokedAt != nil {
			revoked = relativeTime(*k.RevokedAt, now)
		}
		writeRow(tw, oneLine(k.ID), cell(k.Name, maxNameWidth), relativeTime(k.CreatedAt, now), lastUsed, revoked)
	}
	return tw.Flush()
}
