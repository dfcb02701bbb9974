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

// runsFilter is what `runs list` and `deployments runs` select by.
type runsFilter struct {
	deploymentID, trigger string
	errorsOnly            bool
	limit                 int
}

func (f *runsFilter) addFlags(cmd *cobra.Command, withDeployment bool) {
	if withDeployment {
		cmd.Flags().StringVar(&f.deploymentID, "deployment", "", "only runs of this deployment id")
	}
	cmd.Flags().BoolVar(&f.errorsOnly, "errors", false, "only runs whose session could not be created")
	cmd.Flags().StringVar(&f.trigger, "trigger", "", "only runs with this trigger: schedule or manual")
	cmd.Flags().IntVar(&f.limit, "limit", defaultRunsLimit, "show at most this many (0: all)")
}

func newRunsListCommand(cc *commandContext) *cobra.Command {
	var f runsFilter
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List deployment runs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return listRuns(cmd, cc, f)
		},
	}
	f.addFlags(cmd, true)
	return cmd
}

// newDeploymentsRunsCommand is `runs list --deployment ID` where the
// deployment is at hand.
func newDeploymentsRunsCommand(cc *commandContext) *cobra.Command {
	var f runsFilter
	cmd := &cobra.Command{
		Use:   "runs ID",
		Short: "List a deployment's runs, newest first (runs list --deployment ID)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireID("deployment", args[0]); err != nil {
				return err
			}
			f.deploymentID = args[0]
			return listRuns(cmd, cc, f)
		},
	}
	f.addFlags(cmd, false)
	return cmd
}

func listRuns(cmd *cobra.Command, cc *commandContext, f runsFilter) error {
	if err := checkLimit(f.limit); err != nil {
		return err
	}
	client, err := cc.client(cmd)
	if err != nil {
		return err
	}
	query := url.Values{}
	if f.deploymentID != "" {
		query.Set("deployment_id", f.deploymentID)
	}
	if f.trigger != "" {
		query.Set("trigger_type", f.trigger)
	}
	if f.errorsOnly {
		query.Set("has_error", strconv.FormatBool(true))
	}
	list, err := collectPages(cmd.Context(), client, "/v1/deployment_runs", query, f.limit, runsPageSize)
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
}
