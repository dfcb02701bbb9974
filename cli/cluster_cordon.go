package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

// sandbox0d cluster cordon|uncordon NODE (issue 26): POST
// /admin/cluster/cordon|uncordon on the socket.

func newCordonCommands(cc *commandContext) []*cobra.Command {
	mk := func(verb, short, done string) *cobra.Command {
		return &cobra.Command{
			Use:   verb + " NODE",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				client, err := cc.client(cmd)
				if err != nil {
					return err
				}
				body, _ := json.Marshal(map[string]string{"node": args[0]})
				data, err := client.post(cmd.Context(), "/admin/cluster/"+verb, body)
				if err != nil {
					return err
				}
				if cc.json {
					return printJSON(cmd.OutOrStdout(), data)
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", oneLine(args[0]), done)
				return err
			},
		}
	}
	return []*cobra.Command{
		mk("cordon", "Place no new sessions on NODE (its sessions keep running and stay reachable)", "cordoned: no new sessions are placed on it"),
		mk("uncordon", "Place sessions on NODE again", "uncordoned: sessions are placed on it again"),
	}
}
