package main

import (
	"context"
	"sync"
	"time"
)

// loadResult is what one load phase measured.
type loadResult struct {
	ops      int
	errs     int
	firstErr error
	elapsed  time.Duration
	lat      []time.Duration
}

func (r loadResult) rate() float64 { return float64(r.ops) / r.elapsed.Seconds() }

// runLoad runs op from clients goroutines until dur has passed or maxOps
// operations were started (0: no count bound), and records each latency.
// op gets the client index and that client's operation count.
func runLoad(ctx context.Context, clients int, dur time.Duration, maxOps int, op func(ctx context.Context, client, n int) error) loadResult {
	ctx, cancel := context.WithTimeout(ctx, dur+30*time.Second) // a stuck request cannot hold the phase
	defer cancel()
	var (
		mu      sync.Mutex
		res     loadResult
		wg      sync.WaitGroup
		started int
	)
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if maxOps > 0 && started >= maxOps {
			return false
		}
		started++
		return true
	}
	begin := time.Now()
	deadline := begin.Add(dur)
	for c := range clients {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 4096)
			errs := 0
			var first error
			for n := 0; time.Now().Before(deadline) && ctx.Err() == nil && take(); n++ {
				t0 := time.Now()
				err := op(ctx, c, n)
				lat = append(lat, time.Since(t0))
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
				}
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			res.errs += errs
			if res.firstErr == nil {
				res.firstErr = first
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(begin)
	res.ops = len(res.lat)
	return res
}

// merge pools two phases (their operations, errors, time and latencies).
func (r loadResult) merge(o loadResult) loadResult {
	r.ops += o.ops
	r.errs += o.errs
	if r.firstErr == nil {
		r.firstErr = o.firstErr
	}
	r.elapsed += o.elapsed
	r.lat = append(r.lat, o.lat...)
	return r
}
