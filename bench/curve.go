package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// curvePoint is what the scaling curve measures at one store size.
type curvePoint struct {
	n                   int
	seedTook            time.Duration // creating the API-created part
	viaAPI              int           // deployments created through the API at this size
	cloned              int           // deployments cloned into the file instead
	ready               time.Duration
	readyCPU            time.Duration // daemon CPU time from exec to READY
	rss                 int64
	heapPerDeployment   float64 // live heap after a GC, per stored deployment
	retrieveRate        float64
	retrieveP50, retP99 time.Duration
	listRate            float64
	listP50, listP99    time.Duration
	idleCPU             float64 // percent of one core
}

// parseSizes reads -scale-sizes ("10000,100000,1000000").
func parseSizes(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-scale-sizes: %q is not a positive count", f)
		}
		if len(out) > 0 && n <= out[len(out)-1] {
			return nil, fmt.Errorf("-scale-sizes must increase")
		}
		out = append(out, n)
	}
	return out, nil
}

// curveLoad is the load phase of one request kind at one size.
const curveLoad = 4 * time.Second

// runScaleCurve grows one store through the given sizes (seeding only the
// difference each time through the API), restarts the daemon at each size
// and measures start-to-READY, RSS, live heap per deployment, retrieve and
// list latency and idle CPU; then the growth factor of each between sizes.
func runScaleCurve(ctx context.Context, h *harness, o options, sizes []int) *section {
	sec := &section{name: "scale", title: "Scaling curve: " + strings.Trim(strings.ReplaceAll(fmt.Sprint(sizes), " ", ", "), "[]") + " deployments"}
	fake, err := startFake(0)
	if err != nil {
		return sec.abort(err)
	}
	defer fake.Close()
	cfg := daemonConfig{DataDir: h.dir("curve"), UpstreamURL: fake.URL, UpstreamKey: fake.APIKey(),
		Env: map[string]string{"SANDBOX0D_DEBUG_PPROF": "true"}}
	spec := scaleSpec(time.Now())
	var ids []string
	var points []curvePoint
	const conc = 64
	for _, n := range sizes {
		if ctx.Err() != nil {
			return sec.abort(ctx.Err())
		}
		pt := curvePoint{n: n}
		p, err := h.start(ctx, cfg)
		if err != nil {
			return sec.abort(err)
		}
		base := len(ids)
		viaAPI := max(0, min(n, o.apiSeed)-base)
		h.logf("curve: seeding %d → %d deployments (%d through the API)", base, n, viaAPI)
		seeded, err := seed(ctx, h, p.api, viaAPI, conc, func(i int) deploymentSpec { return spec(base + i) })
		if err != nil {
			p.kill()
			return sec.abort(err)
		}
		ids = append(ids, seeded.ids...)
		pt.seedTook, pt.viaAPI = seeded.took, viaAPI
		if err := p.stop(2 * time.Minute); err != nil {
			return sec.abort(fmt.Errorf("stop after seeding: %w", err))
		}
		if len(ids) < n {
			started := time.Now()
			cloned, err := cloneDeployments(cfg.DataDir, ids, len(ids), n, spec)
			if err != nil {
				return sec.abort(err)
			}
			h.logf("curve: cloned %d deployments into the stopped daemon's file in %s", len(cloned), time.Since(started).Round(time.Millisecond))
			ids = append(ids, cloned...)
			pt.cloned = len(cloned)
		}
		if p, err = h.start(ctx, cfg); err != nil {
			return sec.abort(err)
		}
		pt.ready = p.readyIn
		pt.readyCPU, _ = cpuTime(p.pid())
		// A heap profile with gc=1 runs a collection first, so the heap
		// figure below is the live heap, not garbage left by the load.
		if err := p.forceGC(ctx); err != nil {
			p.kill()
			return sec.abort(err)
		}
		ms, err := p.api.metrics(ctx)
		if err != nil {
			p.kill()
			return sec.abort(err)
		}
		pt.heapPerDeployment = ms.sum("go_memstats_heap_alloc_bytes", nil) / float64(n)
		pt.rss, _ = rssBytes(p.pid())

		cpu0, _ := cpuTime(p.pid())
		t0 := time.Now()
		if !sleepCtx(ctx, 15*time.Second) {
			p.kill()
			return sec.abort(ctx.Err())
		}
		cpu1, _ := cpuTime(p.pid())
		pt.idleCPU = 100 * float64(cpu1-cpu0) / float64(time.Since(t0))

		c := p.api
		res := runLoad(ctx, 16, curveLoad, 0, func(ctx context.Context, _, _ int) error {
			_, err := c.do(ctx, http.MethodGet, "/v1/deployments/"+ids[rand.IntN(len(ids))], nil)
			return err
		})
		pt.retrieveRate, pt.retrieveP50, pt.retP99 = res.rate(), percentile(res.lat, 50), percentile(res.lat, 99)
		retrieveErrs := res.errs
		cursors := make([]string, 16)
		res = runLoad(ctx, 16, curveLoad, 0, func(ctx context.Context, client, _ int) error {
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
		})
		pt.listRate, pt.listP50, pt.listP99 = res.rate(), percentile(res.lat, 50), percentile(res.lat, 99)
		sec.check(checkIf(retrieveErrs == 0 && res.errs == 0, fmt.Sprintf("%d: every request answered 2xx", n),
			fmt.Sprintf("%d retrieve and %d list errors", retrieveErrs, res.errs)))
		sec.check(checkIf(int(ms.sum("sandbox0d_deployments", nil)) == n, fmt.Sprintf("%d: every deployment loaded", n),
			fmt.Sprintf("sandbox0d_deployments %.0f", ms.sum("sandbox0d_deployments", nil))))
		if err := p.stop(2 * time.Minute); err != nil {
			sec.check(fail(fmt.Sprintf("%d: graceful shutdown", n), err.Error()))
		}
		h.logf("  %d: ready %s, RSS %.0f MiB, heap %.0f B/deployment, retrieve p50 %s p99 %s, list p50 %s p99 %s, idle CPU %.2f%%",
			n, pt.ready.Round(time.Millisecond), mib(pt.rss), pt.heapPerDeployment, fmtDur(pt.retrieveP50), fmtDur(pt.retP99),
			fmtDur(pt.listP50), fmtDur(pt.listP99), pt.idleCPU)
		points = append(points, pt)
	}

	sec.note("Setup: one data directory grows through the sizes; at each size the harness creates the missing deployments "+
		"through the API (%d concurrent clients; the schedule mix of the scale test: nine in ten scheduled, none firing "+
		"during the measurement) up to the first "+strconv.Itoa(o.apiSeed)+" (`-scale-api-seed`), clones API-created documents "+
		"straight into the stopped daemon's bbolt file beyond that (own id, name, metadata, created_at and the same schedule "+
		"variety: a million creates through the API take most of an hour here), restarts the daemon and measures. Start-to-READY is exec → first 200 from `/readyz`; CPU to READY is the daemon's utime+stime at that moment, "+
		"which, unlike the wall time, does not depend on how much of the shared machine the daemon got. "+
		"Heap is `go_memstats_heap_alloc_bytes` right after a forced collection (a `gc=1` heap profile over the admin "+
		"socket, `debug.pprof` on), divided by the number of deployments. Idle CPU is utime+stime over 15 s with no "+
		"requests. Retrieve and list are %s each with 16 keep-alive clients (retrieve: random ids of the whole store; "+
		"list: `limit=100` walking `next_page`). One run per size: the growth factors, not the absolute figures, are the "+
		"result (the machine is shared).", conc, curveLoad)
	t := table{headers: []string{"deployments", "seed (creates/s)", "start-to-READY", "CPU to READY", "RSS", "heap / deployment",
		"retrieve p50", "retrieve p99", "list p50", "list p99", "idle CPU"}}
	for _, pt := range points {
		seedRate := "—"
		if pt.seedTook > 0 && pt.viaAPI > 0 {
			seedRate = fmt.Sprintf("%.0f/s", float64(pt.viaAPI)/pt.seedTook.Seconds())
		}
		if pt.cloned > 0 {
			seedRate += fmt.Sprintf(" (+%d cloned)", pt.cloned)
		}
		t.add(strconv.Itoa(pt.n), seedRate, fmtDur(pt.ready), fmtDur(pt.readyCPU),
			fmt.Sprintf("%.0f MiB", mib(pt.rss)), fmt.Sprintf("%.0f B", pt.heapPerDeployment),
			fmtDur(pt.retrieveP50), fmtDur(pt.retP99), fmtDur(pt.listP50), fmtDur(pt.listP99), fmt.Sprintf("%.2f %%", pt.idleCPU))
	}
	sec.tables = append(sec.tables, t)
	if len(points) > 1 {
		g := table{title: "Growth factors between consecutive sizes (start and memory should grow like the size; per-request latency should stay near 1×)",
			headers: []string{"step", "size", "start-to-READY", "CPU to READY", "RSS", "heap / deployment", "retrieve p50", "list p50"}}
		for i := 1; i < len(points); i++ {
			a, b := points[i-1], points[i]
			g.add(fmt.Sprintf("%d → %d", a.n, b.n), fmt.Sprintf("%.1f×", float64(b.n)/float64(a.n)),
				fmt.Sprintf("%.1f×", float64(b.ready)/float64(a.ready)), fmt.Sprintf("%.1f×", float64(b.readyCPU)/float64(a.readyCPU)), fmt.Sprintf("%.1f×", float64(b.rss)/float64(a.rss)),
				fmt.Sprintf("%.2f×", b.heapPerDeployment/a.heapPerDeployment),
				fmt.Sprintf("%.2f×", float64(b.retrieveP50)/float64(a.retrieveP50)),
				fmt.Sprintf("%.2f×", float64(b.listP50)/float64(a.listP50)))
		}
		sec.tables = append(sec.tables, g)
	}
	sec.check(fakeCleanCheck(fake))
	return sec
}

// forceGC asks the daemon for a heap profile with gc=1 (debug.pprof must be
// on), which runs a garbage collection first.
func (p *daemonProc) forceGC(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://sandbox0d/admin/debug/pprof/heap?gc=1", nil)
	if err != nil {
		return err
	}
	resp, err := p.admin.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("heap profile: %d", resp.StatusCode)
	}
	return nil
}
