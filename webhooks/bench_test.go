package webhooks

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks/event"
)

// BenchmarkDeliveryThroughput: events committed to the outbox and delivered
// to a fast loopback receiver (204, nothing else), with the daemon's store
// options (fsync on). It reports deliveries per second end to end: fan-out,
// signing, POST, and the batched write of each outcome.
func BenchmarkDeliveryThroughput(b *testing.B) {
	for _, perEndpoint := range []int{1, DefaultMaxConcurrencyPerEndpoint} {
		b.Run(fmt.Sprintf("per_endpoint=%d", perEndpoint), func(b *testing.B) {
			st, err := store.Open(filepath.Join(b.TempDir(), store.FileName), store.Options{})
			require.NoError(b, err)
			defer st.Close()
			got := make(chan struct{}, 1<<16)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusNoContent)
				got <- struct{}{}
			}))
			defer srv.Close()
			cfg := DefaultConfig()
			cfg.MaxConcurrencyPerEndpoint = perEndpoint
			cfg.Endpoints = []EndpointConfig{{URL: srv.URL, SigningKey: Secret(newKey(1))}}
			d, err := New(cfg, Options{Store: st, Logger: quietLogger()})
			require.NoError(b, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); _ = d.Run(ctx) }()
			defer func() { cancel(); <-done }()

			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; {
				n := min(500, b.N-i)
				require.NoError(b, st.Update(func(tx *store.Tx) error {
					for j := range n {
						if err := tx.AppendWebhookEvent(store.WebhookEvent{ID: event.NewID(), Type: event.RunSucceeded,
							ObjectID: fmt.Sprintf("drun_%d", i+j), CreatedAt: time.Now()}); err != nil {
							return err
						}
					}
					return nil
				}))
				d.Notify()
				i += n
			}
			for range b.N {
				<-got
			}
			// The last outcomes are on disk when nothing is pending.
			for d.Pending() > 0 {
				time.Sleep(time.Millisecond)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
		})
	}
}
