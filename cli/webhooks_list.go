package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func newWebhooksListCommand(cc *commandContext) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List webhook endpoints with their pending and failed deliveries (never their keys)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := cc.client(cmd)
			if err != nil {
				return err
			}
			data, err := client.get(cmd.Context(), "/admin/webhooks", nil)
			if err != nil {
				return err
			}
			if cc.json {
				return printJSON(cmd.OutOrStdout(), data)
			}
			var ov webhookOverview
			if err := decodeJSON(data, "the webhook endpoints", &ov); err != nil {
				return err
			}
			return writeWebhookEndpoints(cmd.OutOrStdout(), ov)
		},
	}
}

func writeWebhookEndpoints(w io.Writer, ov webhookOverview) error {
	if len(ov.Endpoints) == 0 {
		_, err := fmt.Fprintln(w, "No webhook endpoints configured (webhooks.endpoints in the config file).")
		return err
	}
	tw := newTable(w)
	writeRow(tw, "ENDPOINT", "EVENTS", "KEYS", "PENDING", "IN FLIGHT", "FAILED")
	for _, ep := range ov.Endpoints {
		events := "all"
		if len(ep.Events) > 0 {
			events = strings.Join(ep.Events, ",")
		}
		writeRow(tw, oneLine(ep.URL), cell(events, 60), strconv.Itoa(ep.Keys), strconv.Itoa(ep.Pending),
			strconv.Itoa(ep.InFlight), strconv.Itoa(ep.Failed))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if ov.Outbox > 0 {
		_, err := fmt.Fprintf(w, "%d committed events are not yet fanned out to deliveries.\n", ov.Outbox)
		return err
	}
	return nil
}
