package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newDeploymentsRunCommand(cc *commandContext) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "run ID [--follow]",
		Short: "Run a deployment now (a manual run); exits non-zero when the session could not be created",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireID("deployment", args[0]); err != nil {
				return err
			}
			client, err := cc.client(cmd)
			if err != nil {
				return err
			}
			data, err := client.post(cmd.Context(), deploymentPath(args[0], "run"), nil)
			if err != nil {
				return err
			}
			var run deploymentRun
			if err := decodeJSON(data, "a deployment run", &run); err != nil {
				return err
			}
			if cc.json {
				err = printJSON(cmd.OutOrStdout(), data)
			} else {
				err = writeRunBlock(cmd.OutOrStdout(), run, cc.now())
			}
			if err != nil {
				return err
			}
			// The API answers 200 with the error on the run; a script still
			// needs to see the failure in the exit code.
			if run.Error != nil {
				return fmt.Errorf("run %s failed: %s: %s", run.ID, run.Error.Type, oneLine(run.Error.Message))
			}
			if follow && run.SessionID != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "Following session %s until it stops (Ctrl-C to stop following).\n", oneLine(*run.SessionID))
				return followSession(cmd.Context(), client, cmd.OutOrStdout(), *run.SessionID, cc.json)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&follow, "follow", false, "then follow the new session's events until it stops, as sessions events -f")
	return cmd
}
