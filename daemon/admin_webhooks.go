package daemon

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sandbox0/sandbox0d/internal/wire"
	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks"
)

// Admin routes of `sandbox0d webhooks …` (socket only, like every admin
// route). Signing keys are never part of an answer.

func (d *Daemon) registerWebhookAdmin(g *echo.Group) {
	g.GET("/webhooks", d.adminWebhooks)
	g.GET("/webhooks/deliveries", d.adminWebhookDeliveries)
	g.POST("/webhooks/events/:id/retry", d.adminWebhookRetry)
	g.POST("/webhooks/test", d.adminWebhookTest)
}

func (d *Daemon) adminWebhooks(c echo.Context) error {
	ov, err := d.hooks.Overview()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ov)
}

// WireWebhookDelivery is one line of `sandbox0d webhooks deliveries`.
type WireWebhookDelivery struct {
	EventID       string               `json:"event_id"`
	EventType     string               `json:"event_type"`
	Endpoint      string               `json:"endpoint"`
	Status        string               `json:"status"`
	Attempts      int                  `json:"attempts"`
	NextAttemptAt *string              `json:"next_attempt_at"`
	CreatedAt     string               `json:"created_at"`
	FinishedAt    *string              `json:"finished_at"`
	AttemptLog    []WireWebhookAttempt `json:"attempt_log"`
}

// WireWebhookAttempt is one attempt of a delivery.
type WireWebhookAttempt struct {
	At         string  `json:"at"`
	StatusCode int     `json:"status_code"`
	Error      string  `json:"error"`
	DurationMS float64 `json:"duration_ms"`
}

func wireTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func renderDelivery(dl store.WebhookDelivery) WireWebhookDelivery {
	w := WireWebhookDelivery{EventID: dl.EventID, EventType: dl.EventType, Endpoint: dl.Endpoint, Status: dl.Status,
		Attempts: dl.AttemptCount, CreatedAt: wireTime(dl.CreatedAt), AttemptLog: []WireWebhookAttempt{}}
	if dl.Status == store.DeliveryPending {
		s := wireTime(dl.NextAttemptAt)
		w.NextAttemptAt = &s
	} else {
		s := wireTime(dl.FinishedAt)
		w.FinishedAt = &s
	}
	for _, a := range dl.Attempts {
		w.AttemptLog = append(w.AttemptLog, WireWebhookAttempt{At: wireTime(a.At), StatusCode: a.StatusCode, Error: a.Error,
			DurationMS: float64(a.Duration.Microseconds()) / 1000})
	}
	return w
}

func (d *Daemon) adminWebhookDeliveries(c echo.Context) error {
	q := webhooks.DeliveryQuery{Endpoint: c.QueryParam("endpoint"), Limit: 100}
	switch v := c.QueryParam("failed"); v {
	case "", "false":
	case "true":
		q.FailedOnly = true
	default:
		wire.WriteError(c.Response(), http.StatusBadRequest, "failed: must be true or false, got "+strconv.Quote(v))
		return nil
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			wire.WriteError(c.Response(), http.StatusBadRequest, "limit: must be an integer from 1 to 1000")
			return nil
		}
		q.Limit = n
	}
	list, err := d.hooks.Deliveries(q)
	if err != nil {
		return err
	}
	out := struct {
		Data []WireWebhookDelivery `json:"data"`
	}{Data: []WireWebhookDelivery{}}
	for _, dl := range list {
		out.Data = append(out.Data, renderDelivery(dl))
	}
	return c.JSON(http.StatusOK, out)
}

// readAdminBody decodes a small JSON object body; an empty body is {}.
func readAdminBody(c echo.Context, into any) bool {
	data, err := io.ReadAll(io.LimitReader(c.Request().Body, 8192))
	if err == nil && len(data) > 0 {
		err = json.Unmarshal(data, into)
	}
	if err != nil {
		wire.WriteError(c.Response(), http.StatusBadRequest, "body must be a JSON object")
		return false
	}
	return true
}

func (d *Daemon) adminWebhookRetry(c echo.Context) error {
	var body struct {
		Endpoint string `json:"endpoint"`
	}
	if !readAdminBody(c, &body) {
		return nil
	}
	n, err := d.hooks.Retry(c.Param("id"), body.Endpoint)
	switch {
	case errors.Is(err, webhooks.ErrUnknownEvent):
		wire.WriteError(c.Response(), http.StatusNotFound, "webhook event "+strconv.Quote(c.Param("id"))+" not found (pruned, or never emitted)")
		return nil
	case errors.Is(err, webhooks.ErrUnknownEndpoint):
		wire.WriteError(c.Response(), http.StatusBadRequest, "endpoint: "+strconv.Quote(body.Endpoint)+" is not a configured webhook endpoint")
		return nil
	case err != nil:
		return err
	}
	d.log.Info("webhook event queued for redelivery", "event_id", c.Param("id"), "deliveries", n)
	return c.JSON(http.StatusOK, map[string]any{"event_id": c.Param("id"), "queued": n})
}

func (d *Daemon) adminWebhookTest(c echo.Context) error {
	var body struct {
		URL string `json:"url"`
	}
	if !readAdminBody(c, &body) {
		return nil
	}
	if body.URL == "" {
		wire.WriteError(c.Response(), http.StatusBadRequest, "url: must be set")
		return nil
	}
	res, err := d.hooks.Test(c.Request().Context(), body.URL)
	if errors.Is(err, webhooks.ErrUnknownEndpoint) {
		wire.WriteError(c.Response(), http.StatusBadRequest, unknownTestEndpoint(body.URL, len(d.config().Webhooks.Endpoints)))
		return nil
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"event_id": res.EventID, "delivered": res.Delivered, "status_code": res.StatusCode,
		"error": res.Error, "duration_ms": float64(res.Duration.Microseconds()) / 1000})
}

// unknownTestEndpoint explains why a ping was refused and how to add the
// endpoint: the ping is signed with the endpoint's key, so only a
// configured endpoint can be tested.
func unknownTestEndpoint(url string, configured int) string {
	how := "add it under webhooks.endpoints in the config file ({url: " + url + ", signing_key_file: …}) and reload with SIGHUP (systemctl reload sandbox0d)"
	if configured == 0 {
		return "url: " + strconv.Quote(url) + ": webhooks test needs a configured endpoint and none is configured (the ping is signed with the endpoint's key); " + how
	}
	return "url: " + strconv.Quote(url) + " is not a configured webhook endpoint (the ping is signed with its key; `sandbox0d webhooks list` shows the configured ones); " + how
}
