package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newWebhooksTestCommand(cc *commandContext) *cobra.Command {
	return &cobra.Command{
		Use:   "test URL",
		Short: "Send a signed ping (data.type webhook.test) to a configured endpoint and show the answer",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(args[0]) == "" {
				return fmt.Errorf("URL: must not be empty")
			}
			client, err := cc.client(cmd)
			if err != nil {
				return err
			}
			body, _ := json.Marshal(map[string]string{"url": args[0]})
			data, err := client.post(cmd.Context(), "/admin/webhooks/test", body)
			if err != nil {
				return err
			}
			if cc.json {
				return printJSON(cmd.OutOrStdout(), data)
			}
			var res struct {
				EventID    string  `json:"event_id"`
				Delivered  bool    `json:"delivered"`
				StatusCode int     `json:"status_code"`
				Error      string  `json:"error"`
				DurationMS float64 `json:"duration_ms"`
			}
			if err := decodeJSON(data, "the test answer", &res); err != nil {
				return err
			}
			if !res.Delivered {
				return fmt.Errorf("ping %s to %s was not accepted: %s (after %.0fms)", res.EventID, oneLine(args[0]), oneLine(res.Error), res.DurationMS)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Ping %s delivered to %s: HTTP %d in %.0fms.\n", res.EventID, oneLine(args[0]), res.StatusCode, res.DurationMS)
			return err
		},
	}
}
