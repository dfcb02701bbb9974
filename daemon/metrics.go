package daemon

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/schedule"
	"github.com/sandbox0/sandbox0d/sessions/local/egress"
	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks"
)

// metrics are exported in Prometheus format on /metrics. Counts that live
// in the store (deployments by status) are read at scrape time from index
// flags, so they can never drift from the truth.
type metrics struct {
	reg            *prometheus.Registry
	fires          *prometheus.CounterVec
	runs           *prometheus.CounterVec
	fireLag        prometheus.Histogram
	backendLatency *prometheus.HistogramVec
	httpRequests   *prometheus.CounterVec
	httpDuration   *prometheus.HistogramVec
	backendName    string
	webhooks       webhookMetrics
	apply          *applyMetrics

	seriesMu   sync.RWMutex
	httpSeries map[httpSeriesKey]*httpSeries
}

func newMetrics(st *store.Store, backendName string) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		reg: reg,
		fires: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox0d_fires_total", Help: "Scheduled fires by outcome (succeeded, failed, paused, skipped).",
		}, []string{"outcome"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox0d_runs_total", Help: "Recorded deployment runs by trigger and error type (none for success).",
		}, []string{"trigger", "error_type"}),
		fireLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sandbox0d_fire_lag_seconds", Help: "Time from a fire's scheduled_at until its session was created.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}),
		backendLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sandbox0d_session_backend_seconds", Help: "Session backend latency per run, by backend and result.",
			Buckets: prometheus.DefBuckets,
		}, []string{"backend", "result"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox0d_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"method", "route", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sandbox0d_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.fires, m.runs, m.fireLag, m.backendLatency, m.httpRequests, m.httpDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(&deploymentCounts{st: st, desc: prometheus.NewDesc("sandbox0d_deployments",
		"Deployments by status (active, paused, archived).", []string{"status"}, nil)})
	m.backendName = backendName
	m.apply = newApplyMetrics(reg)
	return m
}

// watchScheduler exports the size of the timer loop that runs now. It asks
// for the loop at each scrape: in a cluster every leadership term has a
// scheduler of its own, and a follower runs none (0).
func (m *metrics) watchScheduler(loop func() *schedule.Loop) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sandbox0d_scheduler_heap_size", Help: "Deployments waiting in the timer loop (0 on a cluster node that does not lead).",
	}, func() float64 {
		if l := loop(); l != nil {
			return float64(l.Len())
		}
		return 0
	}))
}

type deploymentCounts struct {
	st   *store.Store
	desc *prometheus.Desc
}

func (c *deploymentCounts) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *deploymentCounts) Collect(ch chan<- prometheus.Metric) {
	var counts map[string]int
	if err := c.st.View(func(tx *store.Tx) error { counts = tx.CountDeploymentsByStatus(); return nil }); err != nil {
		return
	}
	for status, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), status)
	}
}

func (m *metrics) observeRun(run *deployments.Run, took time.Duration) {
	errType, result := "none", "ok"
	if run.Error != nil {
		errType, result = string(run.Error.Type), "error"
	}
	m.runs.WithLabelValues(run.Trigger, errType).Inc()
	if took > 0 {
		m.backendLatency.WithLabelValues(m.backendName, result).Observe(took.Seconds())
	}
}

func (m *metrics) observeFire(res deployments.FireResult, _ time.Time, lag time.Duration) {
	m.fires.WithLabelValues(string(res.Outcome)).Inc()
	if res.Run != nil && res.Run.SessionID != "" {
		m.fireLag.Observe(lag.Seconds())
	}
}

// middleware counts requests by route template (not raw path, so ids do not
// explode label cardinality).
func (m *metrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err) // render now so the status code is final
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		s := m.series(knownMethod(c.Request().Method), route, c.Response().Status)
		s.requests.Inc()
		s.duration.Observe(time.Since(start).Seconds())
		return nil
	}
}

// httpSeriesKey names one request counter and its duration histogram. Its
// values are bounded (known methods, registered route templates, status
// codes), so the cache below stays small.
type httpSeriesKey struct {
	method, route string
	status        int
}

type httpSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// series returns the collectors of one (method, route, status), resolving
// the label values once instead of hashing them and formatting the status
// on every request.
func (m *metrics) series(method, route string, status int) *httpSeries {
	k := httpSeriesKey{method, route, status}
	m.seriesMu.RLock()
	s := m.httpSeries[k]
	m.seriesMu.RUnlock()
	if s != nil {
		return s
	}
	s = &httpSeries{
		requests: m.httpRequests.WithLabelValues(method, route, strconv.Itoa(status)),
		duration: m.httpDuration.WithLabelValues(method, route),
	}
	m.seriesMu.Lock()
	if m.httpSeries == nil {
		m.httpSeries = map[httpSeriesKey]*httpSeries{}
	}
	m.httpSeries[k] = s
	m.seriesMu.Unlock()
	return s
}

func (m *metrics) handler() echo.HandlerFunc {
	return echo.WrapHandler(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
}

// knownMethod bounds the method label: any token is a valid HTTP method, and
// unauthenticated callers must not be able to mint new series.
func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// registerEgress exports the egress proxy's decisions, read at scrape time.
func (m *metrics) registerEgress(p *egress.Proxy) {
	for _, decision := range []string{egress.DecisionAllowed, egress.DecisionDenied, egress.DecisionRefused} {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sandbox0d_sandbox_egress_total",
			Help: "Connections of limited-network local sessions through the egress proxy, by decision " +
				"(allowed, denied by the policy, refused over local.egress.max_connections_per_session).",
			ConstLabels: prometheus.Labels{"decision": decision},
		}, func() float64 {
			allowed, denied := p.Counts()
			switch decision {
			case egress.DecisionAllowed:
				return float64(allowed)
			case egress.DecisionDenied:
				return float64(denied)
			}
			return float64(p.Refused())
		}))
	}
}

// registerSandbox exports the local sandbox in force as
// sandbox0d_sandbox_mode{mode}: 1 for it, 0 for the other, so an alert can
// fire on mode="none" == 1.
func (m *metrics) registerSandbox(mode string) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sandbox0d_sandbox_mode",
		Help: "The sandbox local harnesses run in (local.sandbox as in force): 1 for bubblewrap or none, 0 for the other.",
	}, []string{"mode"})
	for _, m := range []string{"bubblewrap", "none"} {
		g.WithLabelValues(m).Set(0)
	}
	g.WithLabelValues(mode).Set(1)
	m.reg.MustRegister(g)
}

// webhookMetrics count delivery attempts by result and time them; the
// pending gauge is read from the store at scrape time.
type webhookMetrics struct {
	deliveries *prometheus.CounterVec
	latency    prometheus.Histogram
}

func (m *metrics) observeWebhook(result string, took time.Duration) {
	m.webhooks.deliveries.WithLabelValues(result).Inc()
	m.webhooks.latency.Observe(took.Seconds())
}

// watchWebhooks registers the webhook series; pending is read at scrape time.
func (m *metrics) watchWebhooks(d *webhooks.Dispatcher) {
	m.webhooks.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sandbox0d_webhook_deliveries_total",
		Help: "Webhook delivery attempts by result: delivered, retrying (failed, another attempt scheduled), failed (for good).",
	}, []string{"result"})
	for _, r := range []string{webhooks.ResultDelivered, webhooks.ResultRetrying, webhooks.ResultFailed} {
		m.webhooks.deliveries.WithLabelValues(r)
	}
	m.webhooks.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "sandbox0d_webhook_delivery_seconds", Help: "Duration of one webhook delivery attempt.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15},
	})
	m.reg.MustRegister(m.webhooks.deliveries, m.webhooks.latency, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sandbox0d_webhook_pending", Help: "Webhook deliveries not yet delivered or failed, and events not yet fanned out.",
	}, func() float64 { return float64(d.Pending()) }))
}
