package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// apiClients is the number of concurrent keep-alive clients of the API
// benchmark.
const apiClients = 64

// farSchedule is a daily schedule at an hour far from now, so stored
// deployments sit in the timer heap without firing during a benchmark.
func farSchedule(i int) string {
	hour := (time.Now().UTC().Hour() + 12) % 24
	return fmt.Sprintf("%d %d * * *", i%60, hour)
}

// runAPI measures retrieve, list (limit 100) and create with 64 concurrent
// keep-alive clients over TCP, with opts.apiN deployments stored.
func runAPI(ctx context.Context, h *harness, o options) *section {
	sec := &section{name: "api", title: "API throughput and latency"}
	fake, err := startFake(0)
	if err != nil {
		return sec.abort(err)
	}
	defer fake.Close()
	p, err := h.start(ctx, daemonConfig{DataDir: h.dir("api"), UpstreamURL: fake.URL, UpstreamKey: fake.APIKey()})
	if err != nil {
		return sec.abort(err)
	}
	defer p.kill()
	c := newAPIClient(p.api.base, apiClients*2)

	spec := func(prefix string) func(i int) deploymentSpec {
		return func(i int) deploymentSpec {
			s := deploymentSpec{Name: fmt.Sprintf("%s-%d", prefix, i), Metadata: map[string]string{"bench": "api", "i": strconv.Itoa(i)}}
			if i%4 != 0 { // three in four are scheduled (far from now), the rest manual-only
				s.Expression = farSchedule(i)
			}
			return s
		}
	}
	h.logf("seeding %d deployments through the API (%d clients)", o.apiN, apiClients/2)
	seeded, err := seed(ctx, h, c, o.apiN, apiClients/2, spec("api"))
	if err != nil {
		return sec.abort(err)
	}
	ids := seeded.ids
	seedRate := float64(o.apiN) / seeded.took.Seconds()
	h.logf("seeded in %s (%.0f creates/s)", seeded.took.Round(time.Millisecond), seedRate)

	// Warm up connections and caches before measuring.
	runLoad(ctx, apiClients, time.Second, 0, func(ctx context.Context, _, _ int) error {
		_, err := c.do(ctx, http.MethodGet, "/v1/deployments/"+ids[rand.IntN(len(ids))], nil)
		return err
	})

	cursors := make([]string, apiClients)
	ops := []struct {
		name string
		op   func(ctx context.Context, client, n int) error
	}{
		{"retrieve `GET /v1/deployments/{id}`", func(ctx context.Context, _, _ int) error {
			_, err := c.do(ctx, http.MethodGet, "/v1/deployments/"+ids[rand.IntN(len(ids))], nil)
			return err
		}},
		{"list `GET /v1/deployments?limit=100` (walking next_page)", func(ctx context.Context, client, _ int) error {
			q := url.Values{"limit": {"100"}}
			if cursors[client] != "" {
				q.Set("page", cursors[client])
			}
			body, err := c.do(ctx, http.MethodGet, "/v1/deployments?"+q.Encode(), nil)
			if err != nil {
				return err
			}
			cursors[client] = nextPageOf(body)
			return nil
		}},
		{"create `POST /v1/deployments`", func(ctx context.Context, client, n int) error {
			_, err := c.createDeployment(ctx, spec(fmt.Sprintf("api-load-c%d", client))(n).body())
			return err
		}},
	}
	type samples struct{ rate, p50, p99 []float64 }
	results := make([]samples, len(ops))
	errs := make([]int, len(ops))
	var firstErr error
	created := 0
	for r := range o.runs {
		for i, op := range ops {
			if ctx.Err() != nil {
				return sec.abort(ctx.Err())
			}
			res := runLoad(ctx, apiClients, o.apiPhase, 0, op.op)
			if i == 2 {
				created += res.ops - res.errs
			}
			results[i].rate = append(results[i].rate, res.rate())
			results[i].p50 = append(results[i].p50, float64(percentile(res.lat, 50)))
			results[i].p99 = append(results[i].p99, float64(percentile(res.lat, 99)))
			errs[i] += res.errs
			if firstErr == nil && res.firstErr != nil {
				firstErr = res.firstErr
			}
			h.logf("  run %d %-50s %7.0f req/s  p50 %-9s p99 %-9s errors %d", r+1, op.name, res.rate(),
				fmtDur(percentile(res.lat, 50)), fmtDur(percentile(res.lat, 99)), res.errs)
		}
	}

	sec.note("Setup: %d deployments stored (three in four with a daily cron schedule far from now, one in four "+
		"manual-only), created through the API by %d concurrent clients in %s (%.0f creates/s; each create "+
		"resolves the agent and checks the environment on the upstream and commits one bbolt transaction with fsync). "+
		"Fake upstream latency 0.", o.apiN, apiClients/2, seeded.took.Round(time.Second), seedRate)
	sec.note("Method: a Go load generator in the harness process with %d concurrent clients, each on its own "+
		"keep-alive TCP connection with the `x-api-key` and `anthropic-beta` headers, runs each operation for %s "+
		"per run; retrieve picks a random stored id, list walks the whole collection 100 at a time following "+
		"`next_page`, create adds new scheduled/manual deployments (so the store grows during the run). "+
		"Latency is measured at the client (request written → body read). Medians of %d runs, (min–max) in parentheses.",
		apiClients, o.apiPhase, o.runs)
	t := table{headers: []string{"operation", "requests/s", "p50", "p99", "errors"}}
	for i, op := range ops {
		t.add(op.name, fmtMedianRange(results[i].rate, fmtRate), fmtMedianRange(results[i].p50, fmtDurF),
			fmtMedianRange(results[i].p99, fmtDurF), strconv.Itoa(errs[i]))
	}
	sec.tables = append(sec.tables, t)

	total := 0
	for _, e := range errs {
		total += e
	}
	detail := "every request answered 2xx"
	if firstErr != nil {
		detail = fmt.Sprintf("%d failed; first: %v", total, firstErr)
	}
	sec.check(checkIf(total == 0, "no failed requests", detail))
	all, err := c.allDeployments(ctx)
	if err != nil {
		return sec.abort(err)
	}
	want := o.apiN + created
	sec.check(checkIf(len(all) == want, "every acknowledged create is listed",
		fmt.Sprintf("%d listed, %d acknowledged", len(all), want)))
	sec.check(fakeCleanCheck(fake))
	if err := p.stop(30 * time.Second); err != nil {
		sec.check(fail("graceful shutdown", err.Error()))
	} else {
		sec.check(pass("graceful shutdown", "SIGTERM → exit 0"))
	}
	return sec
}

// nextPageOf extracts next_page from a list body without decoding the
// items (it is the last member the API renders); "" at the end.
func nextPageOf(body []byte) string {
	i := bytes.LastIndex(body, []byte(`"next_page":`))
	if i < 0 {
		return ""
	}
	rest := bytes.TrimSpace(body[i+len(`"next_page":`):])
	if len(rest) == 0 || rest[0] != '"' {
		return ""
	}
	end := bytes.IndexByte(rest[1:], '"')
	if end < 0 {
		return ""
	}
	return string(rest[1 : 1+end])
}
