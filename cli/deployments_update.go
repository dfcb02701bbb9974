package cli

import (
	"github.com/spf13/cobra"
)

func newDeploymentsUpdateCommand(cc *commandContext) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "update ID -f FILE",
		Short: "Change a deployment: fields in the file are set, null clears, absent keeps (-f - reads stdin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireID("deployment", args[0]); err != nil {
				return err
			}
			body, err := readDeploymentFile(file, cmd.InOrStdin())
			if err != nil {
				return err
			}
			client, err := cc.client(cmd)
			if err != nil {
				return err
			}
			data, err := client.post(cmd.Context(), deploymentPath(args[0]), body)
			if err != nil {
				return err
			}
			return cc.printDeployment(cmd, data)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the fields to change: a YAML or JSON file, or - for stdin (required)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}
