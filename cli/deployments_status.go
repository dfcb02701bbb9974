package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newDeploymentsStatusCommand builds pause, unpause and archive: each POSTs
// to the deployment's action path and prints the deployment's new state.
func newDeploymentsStatusCommand(cc *commandContext, action, short string) *cobra.Command {
	return &cobra.Command{
		Use:   action + " ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireID("deployment", args[0]); err != nil {
				return err
			}
			client, err := cc.client(cmd)
			if err != nil {
				return err
			}
			data, err := client.post(cmd.Context(), deploymentPath(args[0], action), nil)
			if err != nil {
				return err
			}
			if cc.json {
				return printJSON(cmd.OutOrStdout(), data)
			}
			var d deployment
			if err := decodeJSON(data, "a deployment", &d); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s %s: %s\n", d.ID, oneLine(d.Name), deploymentStatus(d))
			return err
		},
	}
}
