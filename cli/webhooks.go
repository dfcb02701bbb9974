package cli

import (
	"net/url"
	"time"

	"github.com/spf13/cobra"
)

func newWebhooksCommand(cc *commandContext) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "webhooks",
		Aliases: []string{"webhook"},
		Short:   "Inspect and drive webhook delivery (endpoints, deliveries, retries, a signed ping)",
		Args:    cobra.NoArgs,
	}
	cmd.AddCommand(newWebhooksListCommand(cc), newWebhooksDeliveriesCommand(cc), newWebhooksRetryCommand(cc),
		newWebhooksTestCommand(cc))
	return cmd
}

// The admin routes' answers (daemon/admin_webhooks.go).

type webhookOverview struct {
	Endpoints []webhookEndpoint `json:"endpoints"`
	Outbox    int               `json:"outbox"`
}

type webhookEndpoint struct {
	URL      string   `json:"url"`
	Events   []string `json:"events"`
	Keys     int      `json:"signing_keys"`
	Pending  int      `json:"pending"`
	Failed   int      `json:"failed"`
	InFlight int      `json:"in_flight"`
}

type webhookDelivery struct {
	EventID       string           `json:"event_id"`
	EventType     string           `json:"event_type"`
	Endpoint      string           `json:"endpoint"`
	Status        string           `json:"status"`
	Attempts      int              `json:"attempts"`
	NextAttemptAt *time.Time       `json:"next_attempt_at"`
	CreatedAt     time.Time        `json:"created_at"`
	FinishedAt    *time.Time       `json:"finished_at"`
	AttemptLog    []webhookAttempt `json:"attempt_log"`
}

type webhookAttempt struct {
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code"`
	Error      string    `json:"error"`
	DurationMS float64   `json:"duration_ms"`
}

func webhookRetryPath(eventID string) string {
	return "/admin/webhooks/events/" + url.PathEscape(eventID) + "/retry"
}
