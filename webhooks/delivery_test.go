package webhooks

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks/event"
)

// Every delivery verifies with the official Go SDK, field by field; a
// tampered body or a wrong key does not. With two keys (rotation) either
// key alone verifies.
func TestDeliveriesVerifyWithTheSDK(t *testing.T) {
	st := openStore(t)
	single, rotating := newReceiver(nil), newReceiver(nil)
	keyA, keyNew, keyOld := newKey(1), newKey(50), newKey(100)
	cfg := fastConfig(
		EndpointConfig{URL: serve(t, single), SigningKey: Secret(keyA)},
		EndpointConfig{URL: serve(t, rotating), SigningKeys: []Secret{Secret(keyNew), Secret(keyOld)}},
	)
	cfg.OrganizationID, cfg.WorkspaceID = "org_test", "wrkspc_test"
	d := startDispatcher(t, st, cfg, Options{})

	for _, typ := range event.Types {
		e := appendEvent(t, st, d, typ, "obj_"+strings.ReplaceAll(typ, ".", "_"))
		for _, rc := range []struct {
			r    *receiver
			keys []string
		}{{single, []string{keyA}}, {rotating, []string{keyNew, keyOld}}} {
			got := rc.r.next(t)
			assert.Equal(t, e.ID, got.headers.Get("webhook-id"), "webhook-id is the event id")
			assert.Equal(t, "application/json", got.headers.Get("Content-Type"))
			for _, key := range rc.keys {
				ev, err := sdkUnwrap(got.body, got.headers, key)
				require.NoError(t, err, "the SDK verifies %s with its key", typ)
				assert.Equal(t, "event", string(ev.Type))
				assert.Equal(t, e.ID, ev.ID)
				assert.True(t, ev.CreatedAt.Equal(e.CreatedAt), "created_at %v, want %v", ev.CreatedAt, e.CreatedAt)
				assert.Equal(t, typ, ev.Data.Type)
				assert.Equal(t, e.ObjectID, ev.Data.ID)
				assert.Equal(t, "org_test", ev.Data.OrganizationID)
				assert.Equal(t, "wrkspc_test", ev.Data.WorkspaceID)
			}
			// Exactly the SDK's fields, nothing else.
			var raw map[string]any
			require.NoError(t, json.Unmarshal(got.body, &raw))
			assert.Len(t, raw, 4)
			assert.Len(t, raw["data"], 4)

			tampered := []byte(strings.Replace(string(got.body), e.ObjectID, "obj_other", 1))
			_, err := sdkUnwrap(tampered, got.headers, rc.keys[0])
			assert.Error(t, err, "a tampered body does not verify")
			_, err = sdkUnwrap(got.body, got.headers, newKey(200))
			assert.Error(t, err, "a wrong key does not verify")
		}
	}
	assert.Len(t, strings.Fields(rotating.requests()[0].headers.Get("webhook-signature")), 2, "one signature per key")
}

// Filters hold: an endpoint gets exactly the types it asked for.
func TestEndpointFilters(t *testing.T) {
	st := openStore(t)
	all, some := newReceiver(nil), newReceiver(nil)
	d := startDispatcher(t, st, fastConfig(
		EndpointConfig{URL: serve(t, all), SigningKey: Secret(newKey(1))},
		EndpointConfig{URL: serve(t, some), SigningKey: Secret(newKey(2)), Events: []string{event.RunFailed, event.DeploymentPaused}},
	), Options{})
	for _, typ := range event.Types {
		appendEvent(t, st, d, typ, "obj")
	}
	waitIdle(t, d)
	assert.Len(t, all.requests(), len(event.Types))
	var types []string
	for _, r := range some.requests() {
		_, err := sdkUnwrap(r.body, r.headers, newKey(2))
		require.NoError(t, err)
		var p payload
		require.NoError(t, json.Unmarshal(r.body, &p))
		types = append(types, p.Data.Type)
	}
	assert.ElementsMatch(t, []string{event.RunFailed, event.DeploymentPaused}, types)
}

// waitIdle waits until the outbox is fanned out and nothing is pending.
func waitIdle(t *testing.T, d *Dispatcher) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ov, err := d.Overview()
		require.NoError(t, err)
		busy := ov.Outbox
		for _, ep := range ov.Endpoints {
			busy += ep.Pending
		}
		if busy == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still busy: %+v", ov)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A receiver answering 500 and then 200 sees the same webhook-id twice (and
// a body that verifies both times); the delivery ends delivered with both
// attempts logged.
func TestRetryKeepsTheWebhookID(t *testing.T) {
	st := openStore(t)
	key := newKey(7)
	rc := newReceiver(func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	var retrying, delivered atomic.Int32
	d := startDispatcher(t, st, fastConfig(EndpointConfig{URL: serve(t, rc), SigningKey: Secret(key)}), Options{
		Observe: func(result string, _ time.Duration) {
			switch result {
			case ResultRetrying:
				retrying.Add(1)
			case ResultDelivered:
				delivered.Add(1)
			}
		},
	})
	e := appendEvent(t, st, d, event.RunFailed, "drun_1")
	first, second := rc.next(t), rc.next(t)
	assert.Equal(t, e.ID, first.headers.Get("webhook-id"))
	assert.Equal(t, e.ID, second.headers.Get("webhook-id"))
	assert.Equal(t, first.body, second.body, "every attempt sends the same message")
	for _, r := range []received{first, second} {
		_, err := sdkUnwrap(r.body, r.headers, key)
		require.NoError(t, err)
	}
	dl := waitDelivery(t, d, e.ID, store.DeliveryDelivered)
	require.Len(t, dl.Attempts, 2)
	assert.Equal(t, 500, dl.Attempts[0].StatusCode)
	assert.Equal(t, "HTTP 500", dl.Attempts[0].Error)
	assert.Equal(t, 200, dl.Attempts[1].StatusCode)
	// Metrics hear of each attempt right after it is recorded.
	assert.Eventually(t, func() bool { return retrying.Load() == 1 && delivered.Load() == 1 }, 10*time.Second, time.Millisecond)
}

// waitDelivery polls the delivery log (the store, not a sleep-and-hope)
// until the event's delivery reaches status.
func waitDelivery(t *testing.T, d *Dispatcher, eventID, status string) store.WebhookDelivery {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err := d.Deliveries(DeliveryQuery{Limit: 1000})
		require.NoError(t, err)
		for _, dl := range list {
			if dl.EventID == eventID && dl.Status == status {
				return dl
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery of %s never became %s: %+v", eventID, status, list)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Anything but a 2xx is retried (a 3xx included: redirects are not
// followed), up to the last retry, then the delivery is failed; a receiver
// answering webhook-delivery: abort-message stops at once.
func TestRetryScheduleEndsInFailed(t *testing.T) {
	st := openStore(t)
	redirect := newReceiver(func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	abort := newReceiver(func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("webhook-delivery", "abort-message")
		w.WriteHeader(http.StatusGone)
	})
	redirectURL, abortURL := serve(t, redirect), serve(t, abort)
	d := startDispatcher(t, st, fastConfig(
		EndpointConfig{URL: redirectURL, SigningKey: Secret(newKey(1))},
		EndpointConfig{URL: abortURL, SigningKey: Secret(newKey(2))},
	), Options{})
	e := appendEvent(t, st, d, event.DeploymentPaused, "depl_1")

	var failed []store.WebhookDelivery
	deadline := time.Now().Add(30 * time.Second)
	for len(failed) < 2 && time.Now().Before(deadline) {
		var err error
		failed, err = d.Deliveries(DeliveryQuery{FailedOnly: true, Limit: 10})
		require.NoError(t, err)
		time.Sleep(5 * time.Millisecond)
	}
	require.Len(t, failed, 2)
	for _, dl := range failed {
		assert.Equal(t, e.ID, dl.EventID)
		switch dl.Endpoint {
		case redirectURL:
			assert.Equal(t, 4, dl.AttemptCount, "first attempt and three retries")
			assert.Equal(t, 302, dl.Attempts[0].StatusCode)
		case abortURL:
			assert.Equal(t, 1, dl.AttemptCount, "abort-message stops retries")
			assert.Contains(t, dl.Attempts[0].Error, "abort-message")
		}
	}
	assert.Len(t, redirect.requests(), 4)
	assert.Len(t, abort.requests(), 1)
	ov, err := d.Overview()
	require.NoError(t, err)
	for _, ep := range ov.Endpoints {
		assert.Equal(t, 1, ep.Failed)
		assert.Zero(t, ep.Pending)
	}
}

// A receiver that does not answer within the timeout is retried.
func TestTimeoutIsRetried(t *testing.T) {
	// In a bubble, so the timeout is waited out on the fake clock.
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t)
		release := make(chan struct{})
		t.Cleanup(func() { close(release) })
		rc := newReceiver(func(n int, _ http.ResponseWriter, r *http.Request) {
			if n == 1 {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}
		})
		cfg := fastConfig(EndpointConfig{URL: "https://slow.example/hook", SigningKey: Secret(newKey(3))})
		cfg.Timeout = time.Second
		d := startDispatcher(t, st, cfg, Options{Transport: hostTransport{"slow.example": rc}})
		e := appendEvent(t, st, d, event.RunSucceeded, "drun_1")
		first, second := rc.next(t), rc.next(t)
		assert.Equal(t, first.headers.Get("webhook-id"), second.headers.Get("webhook-id"))
		dl := waitDelivery(t, d, e.ID, store.DeliveryDelivered)
		require.GreaterOrEqual(t, len(dl.Attempts), 2)
		assert.Equal(t, "no response within 1s", dl.Attempts[0].Error)
		assert.Equal(t, 200, dl.Attempts[len(dl.Attempts)-1].StatusCode)
	})
}
