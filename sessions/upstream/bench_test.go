package upstream_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/sandbox0/sandbox0d/internal/fakeupstream"
	"github.com/sandbox0/sandbox0d/sessions/upstream"
)

// BenchmarkCreateSession is one run (create + initial events) at a time,
// over loopback.
func BenchmarkCreateSession(b *testing.B) {
	fake := fakeupstream.New(b, fakeupstream.WithoutRecording())
	seedFake(fake)
	backend, err := upstream.New(upstream.Config{URL: fake.URL, APIKey: fake.APIKey()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		if _, err := backend.CreateSession(b.Context(), runRequest(fmt.Sprintf("drun_%d", n))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBurst10k fires 10,000 runs at once per iteration; they queue on
// the default bound of 16 creations in flight.
func BenchmarkBurst10k(b *testing.B) {
	const fires = 10_000
	fake := fakeupstream.New(b, fakeupstream.WithoutRecording())
	seedFake(fake)
	backend, err := upstream.New(upstream.Config{URL: fake.URL, APIKey: fake.APIKey()})
	if err != nil {
		b.Fatal(err)
	}
	iter := 0
	for b.Loop() {
		iter++
		var wg sync.WaitGroup
		for i := range fires {
			wg.Go(func() {
				if _, err := backend.CreateSession(b.Context(), runRequest(fmt.Sprintf("drun_%d_%d", iter, i))); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*fires), "ns/fire")
	if got := fake.MaxCreatesInFlight(); got > upstream.DefaultMaxConcurrency {
		b.Fatalf("%d creations in flight, bound is %d", got, upstream.DefaultMaxConcurrency)
	}
}
