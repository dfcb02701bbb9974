package daemon

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/sandbox0/sandbox0d/store"
)

// POST /admin/cluster/cordon and /admin/cluster/uncordon {"node": NAME}
// (socket only, issue 26): a cordoned node keeps its sessions and serves
// them; no new session is placed on it, so it drains as they end.

func (d *Daemon) registerCordonAdmin(g *echo.Group) {
	for path, on := range map[string]bool{"/cluster/cordon": true, "/cluster/uncordon": false} {
		g.POST(path, func(c echo.Context) error {
			var body struct {
				Node string `json:"node"`
			}
			if err := c.Bind(&body); err != nil || body.Node == "" {
				return echo.NewHTTPError(http.StatusBadRequest, "node: the name of a cluster node (cluster.node_name) is required, as {\"node\": \"NAME\"}")
			}
			err := d.store.SetCordoned(c.Request().Context(), body.Node, on)
			if errors.Is(err, store.ErrNotClustered) {
				return echo.NewHTTPError(http.StatusConflict, "cordon needs cluster mode (store.type etcd); one box places every session on itself")
			}
			if err != nil {
				return err
			}
			return c.JSON(http.StatusOK, map[string]any{"node": body.Node, "cordoned": on})
		})
	}
}
