package console

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks"
)

type deliveryRow struct {
	EventID   string
	EventType string
	Endpoint  string
	Status    string
	Attempts  int
	Next      *timeView
	Finished  *timeView
	CreatedAt *timeView
	Log       []attemptRow
	Failed    bool
	Back      string // the page a Retry returns to ("": webhooks)
}

type attemptRow struct {
	At       *timeView
	Code     int
	Error    string
	Duration string
}

func newDeliveryRow(dl store.WebhookDelivery, now time.Time) deliveryRow {
	row := deliveryRow{EventID: dl.EventID, EventType: dl.EventType, Endpoint: dl.Endpoint, Status: dl.Status,
		Attempts: dl.AttemptCount, CreatedAt: newTime(dl.CreatedAt, "UTC", now), Failed: dl.Status == store.DeliveryFailed}
	if dl.Status == store.DeliveryPending {
		row.Next = newTime(dl.NextAttemptAt, "UTC", now)
	} else {
		row.Finished = newTime(dl.FinishedAt, "UTC", now)
	}
	for i := len(dl.Attempts) - 1; i >= 0; i-- { // newest first
		a := dl.Attempts[i]
		msg := a.Error
		if msg == "HTTP "+strconv.Itoa(a.StatusCode) {
			msg = "" // the status code says it already
		}
		row.Log = append(row.Log, attemptRow{At: newTime(a.At, "UTC", now), Code: a.StatusCode, Error: msg,
			Duration: strconv.FormatFloat(float64(a.Duration.Microseconds())/1000, 'f', 1, 64) + " ms"})
	}
	return row
}

type webhooksView struct {
	Endpoints  []webhooks.EndpointStatus
	Outbox     int
	Deliveries []deliveryRow
	Error      string
	Notice     string
}

func (c *Console) webhooksPage(w http.ResponseWriter, r *http.Request) {
	c.showWebhooks(w, r, http.StatusOK, "", noticeText(r.URL.Query().Get("done")))
}

func (c *Console) showWebhooks(w http.ResponseWriter, r *http.Request, status int, errMsg, notice string) {
	v := webhooksView{Error: errMsg, Notice: notice}
	if c.cfg.Webhooks != nil {
		ov, err := c.cfg.Webhooks.Overview()
		if err != nil {
			v.Error, status = "reading the webhook endpoints failed: "+err.Error(), http.StatusInternalServerError
		}
		v.Endpoints, v.Outbox = ov.Endpoints, ov.Outbox
		list, err := c.cfg.Webhooks.Deliveries(webhooks.DeliveryQuery{Limit: 50})
		if err != nil {
			v.Error, status = "reading the delivery log failed: "+err.Error(), http.StatusInternalServerError
		}
		now := c.cfg.Service.Now()
		for _, dl := range list {
			v.Deliveries = append(v.Deliveries, newDeliveryRow(dl, now))
		}
	}
	c.render(w, r, status, "webhooks", "Webhooks", v)
}

// webhookRetry queues a delivery again through the dispatcher's Retry, as
// `sandbox0d webhooks retry` does, with the admin route's refusals.
func (c *Console) webhookRetry(w http.ResponseWriter, r *http.Request) {
	id, endpoint := r.PathValue("id"), r.PostFormValue("endpoint")
	back := r.PostFormValue("back")
	if back != "failures" {
		back = "webhooks"
	}
	if c.cfg.Webhooks == nil {
		c.errorPage(w, r, http.StatusNotFound, "Webhooks are not wired in this daemon.")
		return
	}
	n, err := c.cfg.Webhooks.Retry(id, endpoint)
	msg, status := "", http.StatusOK
	switch {
	case errors.Is(err, webhooks.ErrUnknownEvent):
		msg, status = "webhook event "+strconv.Quote(id)+" not found (pruned, or never emitted)", http.StatusNotFound
	case errors.Is(err, webhooks.ErrUnknownEndpoint):
		msg, status = "endpoint: "+strconv.Quote(endpoint)+" is not a configured webhook endpoint", http.StatusBadRequest
	case err != nil:
		c.log.Error("console webhook retry failed", "event_id", id, "error", err)
		msg, status = "internal error; see the daemon log", http.StatusInternalServerError
	case n == 0:
		msg, status = "no configured endpoint takes events of this type any more, so nothing was queued", http.StatusConflict
	}
	if msg != "" {
		if back == "failures" {
			c.showFailures(w, r, status, msg, "")
		} else {
			c.showWebhooks(w, r, status, msg, "")
		}
		return
	}
	c.log.Info("console action", "action", "webhook_retry", "event_id", id, "deliveries", n, "key_id", viewerOf(r).KeyID)
	http.Redirect(w, r, Prefix+back+"?done=retry", http.StatusSeeOther)
}

// hostOf shortens an endpoint URL for narrow screens (the full URL is the
// title).
func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host + strings.TrimSuffix(u.Path, "/")
	}
	return raw
}
