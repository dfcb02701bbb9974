package cli

import (
	"net/url"
	"strconv"

	"github.com/spf13/cobra"
)

// deploymentsPageSize is the API's largest deployments page.
const deploymentsPageSize = 100

func newDeploymentsListCommand(cc *commandContext) *cobra.Command {
	var (
		status, agent string
		all           bool
		limit         int
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List deployments, newest first",
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
			if status != "" {
				query.Set("status", status)
			}
			if agent != "" {
				query.Set("agent_id", agent)
			}
			if all {
				query.Set("include_archived", strconv.FormatBool(true))
			}
			list, err := collectPages(cmd.Context(), client, "/v1/deployments", query, limit, deploymentsPageSize)
			if err != nil {
				return err
			}
			if cc.json {
				return printListingJSON(cmd.OutOrStdout(), list)
			}
			items, err := decodeItems[deployment](list, "deployment")
			if err != nil {
				return err
			}
			return writeDeploymentTable(cmd.OutOrStdout(), items, cc.now())
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "only deployments with this status: active or paused")
	cmd.Flags().StringVar(&agent, "agent", "", "only deployments of this agent id")
	cmd.Flags().BoolVar(&all, "all", false, "include archived deployments")
	cmd.Flags().IntVar(&limit, "limit", 0, "show at most this many (0: all)")
	return cmd
}
