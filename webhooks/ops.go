package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks/event"
)

// The operator's view: what the admin routes and `sandbox0d webhooks …` show.

// EndpointStatus is one configured endpoint (never its keys).
type EndpointStatus struct {
	URL      string   `json:"url"`
	Events   []string `json:"events"` // empty: every type
	Keys     int      `json:"signing_keys"`
	Pending  int      `json:"pending"`
	Failed   int      `json:"failed"`
	InFlight int      `json:"in_flight"`
}

// Overview is the list command's answer.
type Overview struct {
	Endpoints []EndpointStatus `json:"endpoints"`
	// Outbox counts committed events not yet fanned out to deliveries.
	Outbox int `json:"outbox"`
}

// Overview reports every configured endpoint with its pending and failed counts.
func (d *Dispatcher) Overview() (Overview, error) {
	cfg := d.cfg.Load()
	out := Overview{Endpoints: []EndpointStatus{}}
	err := d.st.View(func(tx *store.Tx) error {
		out.Outbox = tx.CountWebhookOutbox()
		for _, ep := range cfg.endpoints {
			s := EndpointStatus{URL: ep.url, Events: []string{}, Keys: len(ep.signers),
				Pending: tx.CountWebhookPending(ep.url), Failed: tx.CountWebhookFailed(ep.url)}
			for t := range ep.events {
				s.Events = append(s.Events, t)
			}
			sort.Strings(s.Events)
			out.Endpoints = append(out.Endpoints, s)
		}
		return nil
	})
	d.mu.Lock()
	for i, s := range out.Endpoints {
		if r, ok := d.runners[s.URL]; ok {
			r.mu.Lock()
			out.Endpoints[i].InFlight = len(r.inflight)
			r.mu.Unlock()
		}
	}
	d.mu.Unlock()
	return out, err
}

// Pending counts pending deliveries and events not yet fanned out (the
// metrics gauge).
func (d *Dispatcher) Pending() int {
	n := 0
	_ = d.st.View(func(tx *store.Tx) error {
		n = tx.CountWebhookPending("") + tx.CountWebhookOutbox()
		return nil
	})
	return n
}

// DeliveryQuery filters Deliveries.
type DeliveryQuery = store.WebhookDeliveryQuery

// Deliveries returns the delivery log, newest event first.
func (d *Dispatcher) Deliveries(q DeliveryQuery) ([]store.WebhookDelivery, error) {
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 100
	}
	var out []store.WebhookDelivery
	err := d.st.View(func(tx *store.Tx) error {
		var err error
		out, err = tx.ListWebhookDeliveries(q)
		return err
	})
	return out, err
}

// ErrUnknownEvent is returned by Retry for an event id the store does not hold.
var ErrUnknownEvent = errors.New("no such webhook event")

// ErrUnknownEndpoint is returned for a URL that is not a configured endpoint.
var ErrUnknownEndpoint = errors.New("not a configured webhook endpoint")

// Retry makes every delivery of the event due now with a fresh retry
// schedule: failed and delivered ones are sent again, and a configured
// endpoint that wants the type but has no delivery of it (added since) gets
// one. endpoint, when set, limits it to that URL. It returns the number of
// deliveries queued.
func (d *Dispatcher) Retry(eventID, endpointURL string) (int, error) {
	cfg := d.cfg.Load()
	if endpointURL != "" && cfg.endpoint(endpointURL) == nil {
		return 0, fmt.Errorf("%s: %w", endpointURL, ErrUnknownEndpoint)
	}
	n := 0
	touched := map[string]bool{}
	err := d.st.Update(func(tx *store.Tx) error {
		n = 0
		clear(touched)
		ev, ok, err := tx.WebhookEventByID(eventID)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s: %w", eventID, ErrUnknownEvent)
		}
		now := time.Now().UTC()
		for _, ep := range cfg.endpoints {
			if endpointURL != "" && ep.url != endpointURL || !ep.wants(ev.Type) {
				continue
			}
			if err := tx.RequeueWebhookDelivery(ev.Seq, ep.url, now); err != nil {
				return err
			}
			touched[ep.url] = true
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	d.poke(touched)
	return n, nil
}

func (r *resolved) endpoint(url string) *endpoint {
	for _, ep := range r.endpoints {
		if ep.url == url {
			return ep
		}
	}
	return nil
}

// TestResult is the answer to a signed ping.
type TestResult struct {
	EventID    string        `json:"event_id"`
	StatusCode int           `json:"status_code"`
	Delivered  bool          `json:"delivered"`
	Error      string        `json:"error,omitempty"`
	Duration   time.Duration `json:"duration_ns"`
}

// TestEventType is the data.type of a ping; it is never stored or retried.
const TestEventType = "webhook.test"

// Test sends one signed ping to a configured endpoint, now, bypassing the
// outbox, and says what the receiver answered.
func (d *Dispatcher) Test(ctx context.Context, url string) (TestResult, error) {
	cfg := d.cfg.Load()
	ep := cfg.endpoint(url)
	if ep == nil {
		return TestResult{}, fmt.Errorf("%s: %w", url, ErrUnknownEndpoint)
	}
	id := event.NewID()
	body, _ := json.Marshal(payload{Type: "event", ID: id, CreatedAt: time.Now().UTC().Format(time.RFC3339Nano),
		Data: payloadData{Type: TestEventType, ID: id, OrganizationID: cfg.OrganizationID, WorkspaceID: cfg.WorkspaceID}})
	res := send(ctx, d.client, ep, cfg.Timeout, id, body)
	out := TestResult{EventID: id, StatusCode: res.status, Delivered: res.delivered(), Duration: res.took}
	if res.err != nil {
		out.Error = res.err.Error()
	}
	return out, nil
}
