package cli

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

func newDeploymentsCommand(cc *commandContext) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "deployments",
		Aliases: []string{"deployment"},
		Short:   "List, inspect, create, change and run deployments",
		Args:    cobra.NoArgs,
	}
	cmd.AddCommand(
		newDeploymentsListCommand(cc),
		newDeploymentsGetCommand(cc),
		newDeploymentsCreateCommand(cc),
		newDeploymentsUpdateCommand(cc),
		newDeploymentsStatusCommand(cc, "pause", "Pause a deployment's schedule"),
		newDeploymentsStatusCommand(cc, "unpause", "Resume a paused deployment's schedule"),
		newDeploymentsStatusCommand(cc, "archive", "Archive a deployment (permanent: it can no longer run or change)"),
		newDeploymentsRunCommand(cc),
		newDeploymentsRunsCommand(cc),
		newDeploymentsExportCommand(cc),
	)
	return cmd
}

// deploymentPath is the API path of one deployment, plus an optional action.
func deploymentPath(id string, action ...string) string {
	return strings.Join(append([]string{"/v1/deployments/" + url.PathEscape(id)}, action...), "/")
}

// requireID rejects an empty id argument before it becomes a list request.
func requireID(kind, id string) error {
	if strings.TrimSpace(id) == "" {
		return fmt.Errorf("%s id: must not be empty", kind)
	}
	return nil
}
