package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// deploymentSpec is what the harness sends to create a deployment, kept to
// compare with what the daemon stores.
type deploymentSpec struct {
	Name       string
	Expression string // "" for a manual-only deployment
	Metadata   map[string]string
	RepoToken  string // "" for no repository resource
}

func (s deploymentSpec) body() []byte {
	m := map[string]any{
		"name":           s.Name,
		"agent":          benchAgent,
		"environment_id": benchEnv,
		"initial_events": []any{map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": "benchmark " + s.Name}}}},
		"metadata":       s.Metadata,
	}
	if s.Expression != "" {
		m["schedule"] = map[string]any{"type": "cron", "expression": s.Expression, "timezone": "UTC"}
	}
	if s.RepoToken != "" {
		m["resources"] = []any{map[string]any{"type": "github_repository", "url": "https://github.com/sandbox0/bench",
			"checkout": map[string]any{"type": "branch", "name": "main"}, "authorization_token": s.RepoToken}}
	}
	b, _ := json.Marshal(m)
	return b
}

// seedResult is what seeding produced.
type seedResult struct {
	ids  []string // index i holds spec i's id
	took time.Duration
}

// seed creates n deployments through the API with conc concurrent clients.
// Any failed create stops seeding with an error.
func seed(ctx context.Context, h *harness, c *apiClient, n, conc int, spec func(i int) deploymentSpec) (seedResult, error) {
	res := seedResult{ids: make([]string, n)}
	start := time.Now()
	var (
		next     atomic.Int64
		done     atomic.Int64
		firstErr error
		errOnce  sync.Once
		wg       sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	progress := time.NewTicker(10 * time.Second)
	defer progress.Stop()
	stopProgress := make(chan struct{})
	go func() {
		for {
			select {
			case <-progress.C:
				d := done.Load()
				h.logf("  seeded %d/%d (%.0f/s)", d, n, float64(d)/time.Since(start).Seconds())
			case <-stopProgress:
				return
			}
		}
	}()
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				d, err := c.createDeployment(ctx, spec(i).body())
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("create deployment %d: %w", i, err); cancel() })
					return
				}
				res.ids[i] = d.ID
				done.Add(1)
			}
		})
	}
	wg.Wait()
	close(stopProgress)
	res.took = time.Since(start)
	if firstErr != nil {
		return res, firstErr
	}
	return res, ctx.Err()
}
