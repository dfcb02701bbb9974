package cli

import (
	"net/url"
	"strconv"

	"github.com/spf13/cobra"
)

// runsPageSize is the API's largest runs page.
const runsPageSize = 1000

// defaultRunsLimit keeps a bare `runs list` short: runs accumulate forever.
const defaultRunsLimit = 50

func newRunsListCommand(cc *commandContext) *cobra.Command {
	var (
		deploymentID, trigger string
		errorsOnly            bool
		limit                 int
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List deployment runs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkLimit(limit); err != nil {
				return err
			}
			client, err := cc.client(cmd)
			if err != nil {
				return err
			}
			query := url.Values{}
			if deploymentID != "" {
				query.Set("deployment_id", deploymentID)
			}
			if trigger != "" {
				query.Set("trigger_type", trigger)
			}
			if errorsOnly {
				query.Set("has_error", strconv.FormatBool(true))
			}
			list, err := collectPages(cmd.Context(), client, "/v1/deployment_runs", query, limit, runsPageSize)
			if err != nil {
				return err
			}
			if cc.json {
				return printListingJSON(cmd.OutOrStdout(), list)
			}
			runs, err := decodeItems[deploymentRun](list, "deployment run")
			if err != nil {
				return err
			}
			return writeRunTable(cmd.OutOrStdout(), runs, cc.now())
		},
	}
	cmd.Flags().StringVar(&deploymentID, "deployment", "", "only runs of this deployment id")
	cmd.Flags().BoolVar(&errorsOnly, "errors", false, "only runs whose session could not be created")
	cmd.Flags().StringVar(&trigger, "trigger", "", "only runs with this trigger: schedule or manual")
	cmd.Flags().IntVar(&limit, "limit", defaultRunsLimit, "show at most this many (0: all)")
	return cmd
}
