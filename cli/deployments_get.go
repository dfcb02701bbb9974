package cli

import (
	"github.com/spf13/cobra"
)

func newDeploymentsGetCommand(cc *commandContext) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show one deployment",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireID("deployment", args[0]); err != nil {
				return err
			}
			client, err := cc.client(cmd)
			if err != nil {
				return err
			}
			data, err := client.get(cmd.Context(), deploymentPath(args[0]), nil)
			if err != nil {
				return err
			}
			return cc.printDeployment(cmd, data)
		},
	}
}

// printDeployment prints a deployment answer as JSON or as a readable block.
func (cc *commandContext) printDeployment(cmd *cobra.Command, data []byte) error {
	if cc.json {
		return printJSON(cmd.OutOrStdout(), data)
	}
	var d deployment
	if err := decodeJSON(data, "a deployment", &d); err != nil {
		return err
	}
	return writeDeploymentBlock(cmd.OutOrStdout(), d, cc.now())
}
