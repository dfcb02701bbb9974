package deployments

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/store"
)

// BenchmarkOutboxAppendCost is the added cost per API write of the webhook
// outbox entry: the same deployment update (PATCH name) with webhooks
// enabled and disabled, alternating write by write in one run so both see
// the same machine and file. Reported per store mode: fsync (the daemon's)
// and nosync (the CPU cost alone, which fsync otherwise hides).
//
//	go test ./deployments -run '^$' -bench OutboxAppendCost
//
// Metrics: ns/write-with and ns/write-without (mean), and ratio (with /
// without).
func BenchmarkOutboxAppendCost(b *testing.B) {
	for _, mode := range []struct {
		name   string
		noSync bool
	}{{"fsync", false}, {"nosync", true}} {
		b.Run(mode.name, func(b *testing.B) {
			st, err := store.Open(filepath.Join(b.TempDir(), "db"), store.Options{NoSync: mode.noSync})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			sink := &testSink{}
			s := NewService(Config{Store: st, Backend: sessionstest.New(map[string]int64{"agent_a": 1}), Events: sink, Logger: discardLogger()})
			ctx := context.Background()
			d := createScheduledB(b, s)
			up, err := DecodeUpdate([]byte(`{"name":"renamed"}`))
			if err != nil {
				b.Fatal(err)
			}
			var with, without time.Duration
			b.ResetTimer()
			for i := range b.N {
				on := i%2 == 0
				sink.enabled.Store(on)
				start := time.Now()
				if _, err := s.Update(ctx, d.ID, up); err != nil {
					b.Fatal(err)
				}
				if on {
					with += time.Since(start)
				} else {
					without += time.Since(start)
				}
			}
			half := float64(max(b.N/2, 1))
			b.ReportMetric(float64(with.Nanoseconds())/half, "ns/write-with")
			b.ReportMetric(float64(without.Nanoseconds())/half, "ns/write-without")
			if without > 0 {
				b.ReportMetric(float64(with)/float64(without), "ratio")
			}
		})
	}
}

func createScheduledB(b *testing.B, s *Service) *Deployment {
	in, err := DecodeCreate([]byte(`{"name":"s","agent":{"id":"agent_a","version":1},"environment_id":"env",
		"initial_events":[{"type":"user.message","content":[{"type":"text","text":"go"}]}],
		"schedule":{"type":"cron","expression":"*/5 * * * *","timezone":"UTC"}}`))
	if err != nil {
		b.Fatal(err)
	}
	d, err := s.Create(context.Background(), in)
	if err != nil {
		b.Fatal(err)
	}
	return d
}
