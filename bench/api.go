package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
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
	if o.baseline == "" {
		sec, _ := apiScenario(ctx, h, o, h.daemon, "")
		return sec
	}
	// A/B: the baseline revision and the working tree, each on its own
	// daemon and store, one after the other; every ratio is to the livez
	// slices interleaved with it, so both builds are judged against the
	// floor of the moment they ran.
	l, id, err := h.buildRevision(ctx, o.baseline)
	if err != nil {
		return (&section{name: "api", title: "API throughput and latency"}).abort(err)
	}
	base, baseRatios := apiScenario(ctx, h, o, l, "baseline "+id)
	work, workRatios := apiScenario(ctx, h, o, h.daemon, "working tree")
	sec := work
	sec.title = "API throughput and latency (A/B against " + id + ")"
	sec.note("A/B: the baseline ran first, then the working tree, each on a fresh daemon and store seeded the same way; the tables above are the working tree's, then the baseline's.")
	sec.tables = append(sec.tables, base.tables...)
	for _, c := range base.checks {
		c.name = "baseline " + id + ": " + c.name
		sec.check(c)
	}
	if base.err != nil {
		sec.err = base.err
	}
	t := table{title: "A/B: ratio to livez, working tree vs baseline " + id, headers: []string{"operation", "working tree", "baseline " + id, "working ÷ baseline"}}
	for i := range workRatios {
		if i < len(baseRatios) {
			t.add(apiOpNames[i+1], fmt.Sprintf("%.2f", workRatios[i]), fmt.Sprintf("%.2f", baseRatios[i]), fmt.Sprintf("**%.2f×**", workRatios[i]/baseRatios[i]))
		}
	}
	sec.tables = append(sec.tables, t)
	return sec
}

// apiOpNames are the table names of the API operations, floor first.
var apiOpNames = []string{"floor `GET /livez`", "retrieve `GET /v1/deployments/{id}`",
	"list `GET /v1/deployments?limit=100` (walking next_page)", "create `POST /v1/deployments`"}

// apiScenario runs the API measurement on one build and returns its section
// and the median ratio to livez of each operation after the floor.
func apiScenario(ctx context.Context, h *harness, o options, l launcher, build string) (*section, []float64) {
	sec := &section{name: "api", title: "API throughput and latency"}
	fake, err := startFake(0)
	if err != nil {
		return sec.abort(err), nil
	}
	defer fake.Close()
	var env map[string]string
	if build == "" || build == "working tree" {
		env = pprofEnv(o, nil)
	}
	p, err := h.startWith(ctx, l, daemonConfig{DataDir: h.dir("api"), UpstreamURL: fake.URL, UpstreamKey: fake.APIKey(), Backend: o.apiBack, Env: env})
	if err != nil {
		return sec.abort(err), nil
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
		return sec.abort(err), nil
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
	// /livez first: it is the HTTP stack's floor on this machine right now,
	// and every other operation is reported as a ratio to it measured in the
	// same run, because absolute figures on a shared box move several-fold
	// between days while the ratios do not.
	ops := []struct {
		name   string
		target float64 // minimum ratio to livez (0: none)
		op     func(ctx context.Context, client, n int) error
	}{
		{"floor `GET /livez`", 0, func(ctx context.Context, _, _ int) error {
			_, err := c.do(ctx, http.MethodGet, "/livez", nil)
			return err
		}},
		{"retrieve `GET /v1/deployments/{id}`", 0.9, func(ctx context.Context, _, _ int) error {
			_, err := c.do(ctx, http.MethodGet, "/v1/deployments/"+ids[rand.IntN(len(ids))], nil)
			return err
		}},
		{"list `GET /v1/deployments?limit=100` (walking next_page)", 0.1, func(ctx context.Context, client, _ int) error {
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
		{"create `POST /v1/deployments`", 0.35, func(ctx context.Context, client, n int) error {
			_, err := c.createDeployment(ctx, spec(fmt.Sprintf("api-load-c%d", client))(n).body())
			return err
		}},
	}
	const createOp = 3
	type samples struct{ rate, ratio, p50, p99 []float64 }
	results := make([]samples, len(ops))
	errs := make([]int, len(ops))
	var firstErr error
	created := 0
	// Each operation's phase alternates with /livez in short slices
	// (livez, op, livez, op, …), and its ratio is its requests over the
	// livez requests of the slices around it: load from other processes on
	// a shared machine changes within seconds, and slices this short see
	// nearly the same load.
	const slice = 500 * time.Millisecond
	slices := max(1, int(o.apiPhase/slice))
	for r := range o.runs {
		for i, op := range ops[1:] {
			i++
			if ctx.Err() != nil {
				return sec.abort(ctx.Err()), nil
			}
			var prof *profileCapture
			if o.profile != "" && r == o.runs-1 {
				prof = p.startProfile(ctx, time.Duration(slices)*2*slice, filepath.Join(o.profile, fmt.Sprintf("api-%s.pprof", opSlug(op.name))))
			}
			var floor, res loadResult
			for range slices {
				f := runLoad(ctx, apiClients, slice, 0, ops[0].op)
				x := runLoad(ctx, apiClients, slice, 0, op.op)
				floor = floor.merge(f)
				res = res.merge(x)
			}
			if prof != nil {
				if err := prof.wait(); err != nil {
					h.logf("  profile: %v", err)
				} else {
					h.logf("  profile written to %s", prof.path)
				}
			}
			if i == createOp {
				created += res.ops - res.errs
			}
			for k, m := range []loadResult{floor, res} {
				j := []int{0, i}[k]
				results[j].rate = append(results[j].rate, m.rate())
				results[j].ratio = append(results[j].ratio, m.rate()/floor.rate())
				results[j].p50 = append(results[j].p50, float64(percentile(m.lat, 50)))
				results[j].p99 = append(results[j].p99, float64(percentile(m.lat, 99)))
				errs[j] += m.errs
				if firstErr == nil && m.firstErr != nil {
					firstErr = m.firstErr
				}
			}
			h.logf("  run %d %-58s %7.0f req/s  %.3f × livez (%.0f req/s alongside)  p50 %-9s p99 %-9s errors %d", r+1, op.name, res.rate(),
				res.rate()/floor.rate(), floor.rate(), fmtDur(percentile(res.lat, 50)), fmtDur(percentile(res.lat, 99)), res.errs)
		}
	}

	backendNote := "the local backend (the embedded default): each create resolves the agent and environment from the daemon's config and commits its bbolt transaction with fsync"
	if o.apiBack == "upstream" {
		backendNote = "the upstream backend: each create resolves the agent and checks the environment on the strict fake upstream (latency 0) and commits its bbolt transaction with fsync"
	}
	sec.note("Setup: %d deployments stored (three in four with a daily cron schedule far from now, one in four "+
		"manual-only), created through the API by %d concurrent clients in %s (%.0f creates/s); %s.",
		o.apiN, apiClients/2, seeded.took.Round(time.Second), seedRate, backendNote)
	sec.note("Method: a Go load generator in the harness process with %d concurrent clients, each on its own "+
		"keep-alive TCP connection with the `x-api-key` and `anthropic-beta` headers, runs each operation for %s "+
		"per run in 0.5 s slices alternating with `GET /livez` slices of the same length; retrieve picks a random stored id, list walks "+
		"the whole collection 100 at a time following `next_page`, create adds new scheduled/manual deployments "+
		"(so the store grows during the run). Latency is measured at the client (request written → body read). "+
		"`GET /livez` (no auth, no store) on the same daemon and connections is the "+
		"HTTP stack's floor on this machine at that moment, and \"× livez\" is each operation's rate divided by the "+
		"rate of the livez slices interleaved with it (median of the per-run ratios; the livez row pools every slice). Compare ratios, not absolute figures: the "+
		"load generator, the fake upstream and the daemon share the machine, and on a shared host the absolute "+
		"numbers move several-fold between days. Medians of %d runs, (min–max) in parentheses.",
		apiClients, o.apiPhase, o.runs)
	t := table{headers: []string{"operation", "× livez", "target", "requests/s", "p50", "p99", "errors"}}
	for i, op := range ops {
		ratio, target := "1", ""
		if i > 0 {
			ratio = fmtMedianRange(results[i].ratio, func(x float64) string { return fmt.Sprintf("%.2f", x) })
			target = fmt.Sprintf("≥ %.2f", op.target)
			if m := median(results[i].ratio); m >= op.target {
				target += " ✓"
			} else {
				target += " ✗"
			}
		}
		t.add(op.name, ratio, target, fmtMedianRange(results[i].rate, fmtRate), fmtMedianRange(results[i].p50, fmtDurF),
			fmtMedianRange(results[i].p99, fmtDurF), strconv.Itoa(errs[i]))
	}
	if build != "" {
		t.title = build
	}
	sec.tables = append(sec.tables, t)
	var ratios []float64
	for i := 1; i < len(ops); i++ {
		ratios = append(ratios, median(results[i].ratio))
	}

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
		return sec.abort(err), nil
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
	return sec, ratios
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

// opSlug turns an operation's table name into a file name part ("retrieve").
func opSlug(name string) string {
	word, _, _ := strings.Cut(name, " ")
	return word
}
