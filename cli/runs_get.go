package cli

import (
	"github.com/spf13/cobra"
)

func newRunsGetCommand(cc *commandContext) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show one deployment run",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireID("run", args[0]); err != nil {
				return err
			}
			client, err := cc.client(cmd)
			if err != nil {
				return err
			}
			data, err := client.get(cmd.Context(), runPath(args[0]), nil)
			if err != nil {
				return err
			}
			if cc.json {
				return printJSON(cmd.OutOrStdout(), data)
			}
			var run deploymentRun
			if err := decodeJSON(data, "a deployment run", &run); err != nil {
				return err
			}
			return writeRunBlock(cmd.OutOrStdout(), run, cc.now())
		},
	}
}
