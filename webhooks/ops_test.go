package webhooks

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks/event"
)

// Delivered and failed deliveries, and events with no delivery left, are
// pruned after retention; pending ones never are.
func TestRetentionPrunesFinishedDeliveries(t *testing.T) {
	st := openStore(t)
	ok := newReceiver(nil)
	abort := newReceiver(func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("webhook-delivery", "abort-message")
		w.WriteHeader(http.StatusBadRequest)
	})
	cfg := fastConfig(EndpointConfig{URL: serve(t, ok), SigningKey: Secret(newKey(1))},
		EndpointConfig{URL: serve(t, abort), SigningKey: Secret(newKey(2))})
	d := startDispatcher(t, st, cfg, Options{})
	e := appendEvent(t, st, d, event.DeploymentCreated, "depl_1")
	waitDelivery(t, d, e.ID, store.DeliveryDelivered)
	waitDelivery(t, d, e.ID, store.DeliveryFailed)

	n, err := d.Prune(context.Background(), time.Now().Add(-time.Hour))
	require.NoError(t, err)
	assert.Zero(t, n, "nothing is older than the cutoff")

	n, err = d.Prune(context.Background(), time.Now().Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 3, n, "two deliveries and their event")
	list, err := d.Deliveries(DeliveryQuery{})
	require.NoError(t, err)
	assert.Empty(t, list)
	_, err = d.Retry(e.ID, "")
	assert.ErrorIs(t, err, ErrUnknownEvent, "a pruned event cannot be retried")
}

// Retry re-sends a failed delivery with the same webhook-id, and creates a
// delivery for an endpoint added since the event.
func TestRetryRedeliversAndReachesNewEndpoints(t *testing.T) {
	st := openStore(t)
	var healthy = make(chan struct{})
	first := newReceiver(func(_ int, w http.ResponseWriter, _ *http.Request) {
		select {
		case <-healthy:
		default:
			w.Header().Set("webhook-delivery", "abort-message")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	firstURL := serve(t, first)
	cfg := fastConfig(EndpointConfig{URL: firstURL, SigningKey: Secret(newKey(1))})
	d := startDispatcher(t, st, cfg, Options{})
	e := appendEvent(t, st, d, event.RunFailed, "drun_1")
	waitDelivery(t, d, e.ID, store.DeliveryFailed)

	close(healthy)
	later := newReceiver(nil)
	laterURL := serve(t, later)
	cfg.Endpoints = append(cfg.Endpoints, EndpointConfig{URL: laterURL, SigningKey: Secret(newKey(2))})
	require.NoError(t, d.Reload(cfg))
	_, err := d.Retry(e.ID, "https://not-configured.example/")
	assert.True(t, errors.Is(err, ErrUnknownEndpoint))

	n, err := d.Retry(e.ID, "")
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	first.next(t) // the failed attempt
	again := first.next(t)
	assert.Equal(t, e.ID, again.headers.Get("webhook-id"))
	assert.Equal(t, e.ID, later.next(t).headers.Get("webhook-id"))
	waitIdle(t, d)
	list, err := d.Deliveries(DeliveryQuery{Endpoint: firstURL})
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, store.DeliveryDelivered, list[0].Status)
	assert.Equal(t, 2, list[0].AttemptCount, "the attempt log keeps the failed attempt")
}

// A signed ping reaches a configured endpoint and verifies with its key.
func TestPingIsSignedAndNotStored(t *testing.T) {
	st := openStore(t)
	rc := newReceiver(nil)
	url := serve(t, rc)
	key := newKey(4)
	d := startDispatcher(t, st, fastConfig(EndpointConfig{URL: url, SigningKey: Secret(key)}), Options{})
	res, err := d.Test(context.Background(), url)
	require.NoError(t, err)
	assert.True(t, res.Delivered)
	got := rc.next(t)
	ev, err := sdkUnwrap(got.body, got.headers, key)
	require.NoError(t, err)
	assert.Equal(t, TestEventType, ev.Data.Type)
	assert.Equal(t, res.EventID, got.headers.Get("webhook-id"))
	list, err := d.Deliveries(DeliveryQuery{})
	require.NoError(t, err)
	assert.Empty(t, list, "a ping is not an event")
	_, err = d.Test(context.Background(), "https://unknown.example/")
	assert.ErrorIs(t, err, ErrUnknownEndpoint)
}

// An operator retry while an attempt is in flight is not lost when that
// attempt's answer is recorded: the event is sent again.
func TestRetryDuringAnAttemptIsKept(t *testing.T) {
	st := openStore(t)
	release := make(chan struct{})
	rc := newReceiver(func(n int, _ http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			<-release
		}
	})
	d := startDispatcher(t, st, fastConfig(EndpointConfig{URL: serve(t, rc), SigningKey: Secret(newKey(6))}), Options{})
	e := appendEvent(t, st, d, event.DeploymentUpdated, "depl_1")
	rc.next(t) // the first attempt is in flight
	n, err := d.Retry(e.ID, "")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	close(release)
	again := rc.next(t)
	assert.Equal(t, e.ID, again.headers.Get("webhook-id"))
	dl := waitDelivery(t, d, e.ID, store.DeliveryDelivered)
	assert.Equal(t, 2, dl.AttemptCount)
}
