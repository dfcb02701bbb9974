package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

func newWebhooksRetryCommand(cc *commandContext) *cobra.Command {
	var endpoint string
	cmd := &cobra.Command{
		Use:   "retry EVENT_ID",
		Short: "Deliver a webhook event again now, with its webhook-id and a fresh retry schedule",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireID("webhook event", args[0]); err != nil {
				return err
			}
			client, err := cc.client(cmd)
			if err != nil {
				return err
			}
			body, _ := json.Marshal(map[string]string{"endpoint": endpoint})
			data, err := client.post(cmd.Context(), webhookRetryPath(args[0]), body)
			if err != nil {
				return err
			}
			if cc.json {
				return printJSON(cmd.OutOrStdout(), data)
			}
			var res struct {
				Queued int `json:"queued"`
			}
			if err := decodeJSON(data, "the retry answer", &res); err != nil {
				return err
			}
			if res.Queued == 0 {
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "No configured endpoint takes event %s; nothing queued.\n", oneLine(args[0]))
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Queued event %s for %d endpoint(s); see `sandbox0d webhooks deliveries`.\n", oneLine(args[0]), res.Queued)
			return err
		},
	}
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "only redeliver to this endpoint URL")
	return cmd
}
