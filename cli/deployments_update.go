package cli

import (
	"net/http"
	"net/url"

	"github.com/spf13/cobra"
)

func newDeploymentsUpdateCommand(cc *commandContext) *cobra.Command {
	var (
		file  string
		force bool
	)
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
			var query url.Values
			if force {
				// A deployment owned by a set of files answers 409 without
				// it; the next apply restores the file's version.
				query = url.Values{"force": {"true"}}
			}
			data, err := client.doJSON(cmd.Context(), http.MethodPost, deploymentPath(args[0]), query, body)
			if err != nil {
				return err
			}
			return cc.printDeployment(cmd, data)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the fields to change: a YAML or JSON file, or - for stdin (required)")
	cmd.Flags().BoolVar(&force, "force", false, "change a deployment owned by a set of files (`sandbox0d apply`) anyway; the next apply restores the file's version")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}
