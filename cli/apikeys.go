package cli

import (
	"net/url"

	"github.com/spf13/cobra"
)

func newAPIKeysCommand(cc *commandContext) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "apikeys",
		Aliases: []string{"apikey"},
		Short:   "Manage the API keys that TCP clients authenticate with",
		Args:    cobra.NoArgs,
	}
	cmd.AddCommand(newAPIKeysCreateCommand(cc), newAPIKeysListCommand(cc), newAPIKeysRevokeCommand(cc))
	return cmd
}

func apiKeyRevokePath(id string) string { return "/admin/apikeys/" + url.PathEscape(id) + "/revoke" }
