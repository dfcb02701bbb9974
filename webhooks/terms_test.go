package webhooks

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks/event"
)

// In a cluster each leadership term runs the dispatcher once (issue 25):
// Run must deliver again after a previous Run returned. An attempt cut
// short by the end of a term stays pending and is made again in the next
// one with the same webhook-id; between terms nothing is delivered, not
// even after a reload.
func TestRunAgainAfterATermEnds(t *testing.T) {
	st := openStore(t)
	rc := newReceiver(func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 2 {
			<-r.Context().Done() // the second request hangs until the term ends
		}
	})
	cfg := fastConfig(EndpointConfig{URL: serve(t, rc), SigningKey: Secret(newKey(7))})
	d, err := New(cfg, Options{Store: st, Logger: quietLogger()})
	require.NoError(t, err)
	term := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = d.Run(ctx) }()
		return func() { cancel(); <-done }
	}

	stop := term()
	a := appendEvent(t, st, d, event.Types[0], "obj_a")
	assert.Equal(t, a.ID, rc.next(t).headers.Get("webhook-id"))
	// a's answer recorded before b goes out: otherwise the end of the
	// term can cut a's attempt short too, and a is made again.
	require.Eventually(t, func() bool { return d.Pending() == 0 }, 30*time.Second, time.Millisecond, "a delivered")
	b := appendEvent(t, st, d, event.Types[0], "obj_b")
	assert.Equal(t, b.ID, rc.next(t).headers.Get("webhook-id"), "b in flight")
	stop() // the term ends with b's attempt unanswered

	// Between terms: appended and reloaded, but not delivered.
	c := appendEvent(t, st, d, event.Types[0], "obj_c")
	require.NoError(t, d.Reload(cfg))
	assert.Equal(t, 2, d.Pending(), "b still pending, c not fanned out")
	assert.Len(t, rc.requests(), 2, "nothing delivered while no term runs")

	stop = term()
	defer stop()
	got := map[string]int{}
	for range 2 {
		got[rc.next(t).headers.Get("webhook-id")]++
	}
	assert.Equal(t, map[string]int{b.ID: 1, c.ID: 1}, got, "b again with its webhook-id, then c")
	require.Eventually(t, func() bool { return d.Pending() == 0 }, 30*time.Second, 10*time.Millisecond)
	var ds []store.WebhookDelivery
	ds, err = d.Deliveries(DeliveryQuery{})
	require.NoError(t, err)
	for _, dl := range ds {
		assert.Equal(t, store.DeliveryDelivered, dl.Status, dl.EventID)
	}
}
