package cli

import (
	"net/http"

	"github.com/spf13/cobra"
)

func newDeploymentsCreateCommand(cc *commandContext) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "create -f FILE",
		Short: "Create a deployment from a YAML or JSON file (-f - reads stdin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := readDeploymentFile(file, cmd.InOrStdin())
			if err != nil {
				return err
			}
			client, err := cc.client(cmd)
			if err != nil {
				return err
			}
			data, err := client.doJSON(cmd.Context(), http.MethodPost, "/v1/deployments", nil, body)
			if err != nil {
				return err
			}
			return cc.printDeployment(cmd, data)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "deployment definition: a YAML or JSON file, or - for stdin (required)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}
