package cli

import (
	"net/url"

	"github.com/spf13/cobra"
)

func newRunsCommand(cc *commandContext) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List and inspect deployment runs",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newRunsListCommand(cc), newRunsGetCommand(cc))
	return cmd
}

func runPath(id string) string { return "/v1/deployment_runs/" + url.PathEscape(id) }
