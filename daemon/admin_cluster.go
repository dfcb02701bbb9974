package daemon

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sandbox0/sandbox0d/store"
)

// GET /admin/cluster (socket only) and the cluster metrics.

// ClusterStatus is GET /admin/cluster's answer.
type ClusterStatus struct {
	Engine string `json:"engine"` // bbolt or etcd
	store.Status
	// LeaseAges: how long each node has held its current lease, by name.
	LeaseAges map[string]string `json:"lease_ages,omitempty"`
	// Loads: each live node's free turn slots, running sessions, free
	// disk and cordon, as placement reads them (issue 26).
	Loads []store.NodeLoad `json:"loads,omitempty"`
}

func (d *Daemon) registerClusterAdmin(g *echo.Group) {
	g.GET("/cluster", func(c echo.Context) error {
		out, err := d.clusterStatus(c.Request().Context())
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, out)
	})
}

// clusterStatus is what GET /admin/cluster answers and the console's nodes
// view shows: one source for both.
func (d *Daemon) clusterStatus(ctx context.Context) (ClusterStatus, error) {
	out := ClusterStatus{Engine: d.store.Engine()}
	cl := d.clusterHandle()
	if cl == nil {
		// One node owns the bbolt file: it is the whole cluster.
		out.Status = store.Status{Node: d.config().Cluster.NodeName, Role: "leader", Leader: d.config().Cluster.NodeName}
		return out, nil
	}
	st, err := cl.Status(ctx)
	if err != nil {
		return out, err
	}
	out.Status = st
	out.LeaseAges = map[string]string{}
	for _, n := range st.Nodes {
		out.LeaseAges[n.Name] = time.Since(n.Since).Round(time.Second).String()
	}
	if out.Loads, err = cl.Loads(ctx); err != nil {
		return out, err
	}
	return out, nil
}

func (d *Daemon) clusterHandle() *store.Cluster {
	d.clusterMu.Lock()
	defer d.clusterMu.Unlock()
	return d.cluster
}

// registerClusterMetrics adds sandbox0d_cluster_leader and, on etcd,
// sandbox0d_store_request_duration_seconds{op}.
func (d *Daemon) registerClusterMetrics() {
	d.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sandbox0d_cluster_leader",
		Help: "1 while this node runs the timer loop (always on bbolt; the elected leader on etcd), else 0.",
	}, func() float64 {
		if d.store.Engine() != "etcd" {
			return 1
		}
		if cl := d.clusterHandle(); cl != nil && cl.IsLeader() {
			return 1
		}
		return 0
	}))
	if d.store.Engine() != "etcd" {
		return
	}
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sandbox0d_store_request_duration_seconds",
		Help:    "etcd store transactions by op (view, update), conflict reruns and retries included.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"op"})
	d.metrics.reg.MustRegister(h)
	d.store.ObserveRequests(func(op string, took time.Duration) { h.WithLabelValues(op).Observe(took.Seconds()) })
}
