package webhooks

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks/event"
)

// One endpoint down for an hour (fake time) does not delay another by a
// moment; once it is back, its retries deliver everything it missed, each
// with the webhook-id it was first sent with.
func TestOneEndpointDownDoesNotDelayAnother(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t)
		downUntil := time.Now().Add(time.Hour)
		down := newReceiver(func(_ int, w http.ResponseWriter, _ *http.Request) {
			if time.Now().Before(downUntil) {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		})
		up := newReceiver(nil)
		cfg := DefaultConfig() // the real schedule: 5 s, 5 min, 30 min, 2 h, …
		cfg.Endpoints = []EndpointConfig{
			{URL: "https://down.example/hook", SigningKey: Secret(newKey(1))},
			{URL: "https://up.example/hook", SigningKey: Secret(newKey(2))},
		}
		d := startDispatcher(t, st, cfg, Options{Transport: hostTransport{"down.example": down, "up.example": up}})

		var ids []string
		for i := range 60 {
			e := appendEvent(t, st, d, event.RunFailed, fmt.Sprintf("drun_%d", i))
			ids = append(ids, e.ID)
			committed := time.Now()
			got := <-up.got
			require.Equal(t, e.ID, got.headers.Get("webhook-id"))
			require.Zero(t, got.at.Sub(committed), "the healthy endpoint gets event %d at once", i)
			time.Sleep(time.Minute)
		}
		require.False(t, time.Now().Before(downUntil))
		// The last retries of the outage's events come at most 10 h later.
		time.Sleep(11 * time.Hour)
		synctest.Wait()
		firstID := map[string]bool{}
		for _, r := range down.requests() {
			firstID[r.headers.Get("webhook-id")] = true
		}
		assert.Len(t, firstID, 60, "every event reached the endpoint that was down, under its own id")
		for _, id := range ids {
			assert.True(t, firstID[id], id)
		}
		ov, err := d.Overview()
		require.NoError(t, err)
		for _, ep := range ov.Endpoints {
			assert.Zero(t, ep.Pending, ep.URL)
			assert.Zero(t, ep.Failed, ep.URL)
		}
		assert.Len(t, up.requests(), 60, "the healthy endpoint got each event once")
	})
}

// A backlog of 100,000 pending deliveries lives on disk: the heap does not
// grow with it, because a runner reads only as many due deliveries as it
// has free slots.
func TestMemoryFlatOverALargeBacklog(t *testing.T) {
	if testing.Short() {
		t.Skip("appends 100,000 events")
	}
	st := openStore(t)
	// The endpoint hangs every request, so the backlog only grows.
	hang := newReceiver(func(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	cfg := DefaultConfig()
	cfg.Endpoints = []EndpointConfig{{URL: "https://hang.example/hook", SigningKey: Secret(newKey(1))}}
	d := startDispatcher(t, st, cfg, Options{Transport: hostTransport{"hang.example": hang}})

	// Most of the backlog is fanned out directly, in large transactions (the
	// fan-out's own speed is not what this measures); the last thousand go
	// through the outbox and the dispatcher's fan-out.
	appendMany := func(n int, fanOut bool) {
		for done := 0; done < n; {
			batch := min(2_000, n-done) // small transactions: deleting from a huge dirty node is quadratic in bbolt
			require.NoError(t, st.Update(func(tx *store.Tx) error {
				now := time.Now()
				for i := range batch {
					e := store.WebhookEvent{ID: event.NewID(), Type: event.RunSucceeded,
						ObjectID: fmt.Sprintf("drun_%d", done+i), CreatedAt: now}
					if err := tx.AppendWebhookEvent(e); err != nil {
						return err
					}
				}
				if !fanOut {
					return nil
				}
				events, err := tx.OutboxWebhookEvents(batch)
				if err != nil {
					return err
				}
				for _, e := range events {
					if err := tx.FanOutWebhookEvent(e, []string{"https://hang.example/hook"}, now); err != nil {
						return err
					}
				}
				return nil
			}))
			done += batch
		}
		d.Notify()
		waitFannedOut(t, d, n)
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	total := 100_000
	if raceEnabled {
		// Holding the backlog in memory grows the heap by ~290 bytes per
		// pending delivery (checked), seven times the budget below, at any
		// size; noise is tens of KiB.
		total = 5_000
	}
	appendMany(1_000, false)
	before := heap()
	appendMany(total-2_000, true)
	appendMany(1_000, false)
	after := heap()
	assert.Equal(t, total, d.Pending())
	grown := int64(after) - int64(before)
	t.Logf("heap with 1,000 pending: %d KiB; with %d: %d KiB (%+d KiB)", before>>10, total, after>>10, grown>>10)
	// A delivery held in memory costs well over 100 bytes (its record and
	// strings); 40 bytes per pending one is the budget for noise.
	assert.Less(t, grown, int64(40*total), "the heap grew with the backlog")
}

func waitFannedOut(t *testing.T, d *Dispatcher, _ int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		left := 0
		require.NoError(t, d.st.View(func(tx *store.Tx) error { left = tx.CountWebhookOutbox(); return nil }))
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox not drained: %d left", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Pending deliveries resume after a restart with the same webhook-id.
func TestPendingDeliveriesResumeAfterRestart(t *testing.T) {
	st := openStore(t)
	var healthy atomic.Bool
	rc := newReceiver(func(_ int, w http.ResponseWriter, _ *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	url := serve(t, rc)
	cfg := fastConfig(EndpointConfig{URL: url, SigningKey: Secret(newKey(9))})
	cfg.RetrySchedule = []time.Duration{time.Hour} // the first process never gets to retry

	d1, err := New(cfg, Options{Store: st, Logger: quietLogger()})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d1.Run(ctx) }()
	e := appendEvent(t, st, d1, event.DeploymentCreated, "depl_1")
	first := rc.next(t)
	waitRetries(t, d1, e.ID, 1)
	cancel()
	<-done

	// The next process: the retry is due (its schedule says so) and is made.
	healthy.Store(true)
	require.NoError(t, st.Update(func(tx *store.Tx) error {
		dl, _, err := tx.GetWebhookDelivery(url, 1)
		if err != nil {
			return err
		}
		dl.NextAttemptAt = time.Now()
		return tx.PutWebhookDelivery(dl)
	}))
	d2 := startDispatcher(t, st, cfg, Options{})
	second := rc.next(t)
	assert.Equal(t, first.headers.Get("webhook-id"), second.headers.Get("webhook-id"))
	waitDelivery(t, d2, e.ID, store.DeliveryDelivered)
}

func waitRetries(t *testing.T, d *Dispatcher, eventID string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		list, err := d.Deliveries(DeliveryQuery{})
		require.NoError(t, err)
		for _, dl := range list {
			if dl.EventID == eventID && dl.Retries >= n {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("delivery of %s never reached %d retries", eventID, n)
}
