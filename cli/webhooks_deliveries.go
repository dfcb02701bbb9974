package cli

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

func newWebhooksDeliveriesCommand(cc *commandContext) *cobra.Command {
	var (
		failed   bool
		endpoint string
		limit    int
		attempts bool
	)
	cmd := &cobra.Command{
		Use:   "deliveries",
		Short: "Show webhook deliveries, newest event first, with their attempts' status and error",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 1000 {
				return fmt.Errorf("--limit: must be from 1 to 1000, got %d", limit)
			}
			client, err := cc.client(cmd)
			if err != nil {
				return err
			}
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if failed {
				q.Set("failed", "true")
			}
			if endpoint != "" {
				q.Set("endpoint", endpoint)
			}
			data, err := client.get(cmd.Context(), "/admin/webhooks/deliveries", q)
			if err != nil {
				return err
			}
			if cc.json {
				return printJSON(cmd.OutOrStdout(), data)
			}
			var list struct {
				Data []webhookDelivery `json:"data"`
			}
			if err := decodeJSON(data, "the webhook deliveries", &list); err != nil {
				return err
			}
			return writeWebhookDeliveries(cmd.OutOrStdout(), list.Data, attempts, cc.now())
		},
	}
	cmd.Flags().BoolVar(&failed, "failed", false, "only deliveries that failed for good")
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "only deliveries to this endpoint URL")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many deliveries (1-1000)")
	cmd.Flags().BoolVar(&attempts, "attempts", false, "list every attempt under its delivery")
	return cmd
}

func attemptResult(a webhookAttempt) string {
	if a.Error == "" {
		return "HTTP " + strconv.Itoa(a.StatusCode)
	}
	return a.Error
}

func writeWebhookDeliveries(w io.Writer, list []webhookDelivery, attempts bool, now time.Time) error {
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "No webhook deliveries.")
		return err
	}
	tw := newTable(w)
	writeRow(tw, "EVENT", "TYPE", "ENDPOINT", "STATUS", "ATTEMPTS", "LAST RESULT", "NEXT/DONE")
	for _, d := range list {
		last := "-"
		if n := len(d.AttemptLog); n > 0 {
			last = cell(attemptResult(d.AttemptLog[n-1]), 60)
		}
		when := "-"
		switch {
		case d.NextAttemptAt != nil:
			when = "next " + relativeTime(*d.NextAttemptAt, now)
		case d.FinishedAt != nil:
			when = relativeTime(*d.FinishedAt, now)
		}
		writeRow(tw, oneLine(d.EventID), oneLine(d.EventType), oneLine(d.Endpoint), oneLine(d.Status),
			strconv.Itoa(d.Attempts), last, when)
		if !attempts {
			continue
		}
		for i, a := range d.AttemptLog {
			writeRow(tw, "", fmt.Sprintf("  attempt %d", d.Attempts-len(d.AttemptLog)+i+1), relativeTime(a.At, now),
				"", "", cell(attemptResult(a), 60), fmt.Sprintf("%.0fms", a.DurationMS))
		}
	}
	return tw.Flush()
}
