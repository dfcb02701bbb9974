package console

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/sandbox0/sandbox0d/store"
)

// The nodes view (cluster mode): every live node with its role, how long it
// has held its lease, its load as placement reads it (free turn slots,
// running sessions, free disk) and its cordon, the leader, and the etcd
// endpoints' health: what GET /admin/cluster answers, read from the same
// source.

type nodesView struct {
	Self      string // the node serving the page
	Leader    string // "" while no node leads (an election in progress)
	Nodes     []nodeRow
	Endpoints []store.Endpoint
	Error     string
	Notice    string
}

type nodeRow struct {
	Name      string
	URL       string
	Leader    bool
	Self      bool
	LeaseAge  string // how long the node has held its current lease
	Since     *timeView
	HasLoad   bool // the node has published its load (it does within a quarter lease)
	FreeSlots int
	Running   int
	DiskFree  string
	Cordoned  bool
}

func (c *Console) nodesPage(w http.ResponseWriter, r *http.Request) {
	if c.cfg.Cluster == nil {
		c.errorPage(w, r, http.StatusNotFound, "This daemon is not in a cluster (store.type bbolt): it is the only node, and it fires every schedule itself. docs/cluster.md says how several nodes share one state.")
		return
	}
	st, loads, err := c.cfg.Cluster(r.Context())
	v, status := nodesViewOf(st, loads, time.Now()), http.StatusOK
	if err != nil {
		v.Error, status = "reading the cluster from etcd failed: "+err.Error(), http.StatusInternalServerError
		if errors.Is(err, store.ErrUnavailable) {
			status = http.StatusServiceUnavailable // as the API answers an etcd outage
		}
	}
	c.render(w, r, status, "nodes", "Nodes", v)
}

// nodesViewOf joins the live nodes with their loads; the leader first,
// then by name. now is the wall clock: leases are timed by it.
func nodesViewOf(st store.Status, loads []store.NodeLoad, now time.Time) nodesView {
	v := nodesView{Self: st.Node, Leader: st.Leader, Endpoints: st.Endpoints}
	byNode := map[string]store.NodeLoad{}
	for _, l := range loads {
		byNode[l.Node] = l
	}
	for _, n := range st.Nodes {
		row := nodeRow{Name: n.Name, URL: n.AdvertiseURL, Leader: n.Name == st.Leader, Self: n.Name == st.Node,
			Since: newTime(n.Since, "UTC", now)}
		if !n.Since.IsZero() {
			row.LeaseAge = leaseAge(now.Sub(n.Since))
		}
		if l, ok := byNode[n.Name]; ok {
			row.HasLoad, row.FreeSlots, row.Running, row.Cordoned = true, l.FreeSlots, l.Running, l.Cordoned
			if l.DiskFree > 0 {
				row.DiskFree = bytesText(l.DiskFree)
			}
		}
		v.Nodes = append(v.Nodes, row)
	}
	slices.SortFunc(v.Nodes, func(a, b nodeRow) int {
		if a.Leader != b.Leader {
			if a.Leader {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return v
}

// leaseAge is a duration to the second, in at most two units.
func leaseAge(d time.Duration) string {
	d = max(d, 0).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%d min %d s", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 24*time.Hour:
		return fmt.Sprintf("%d h %d min", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%d d %d h", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

// bytesText is a size in binary units, one decimal.
func bytesText(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
