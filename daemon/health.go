package daemon

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// registerHealth serves /livez (the process answers) and /readyz (the store
// answers and the scheduler runs), without auth so probes need no key.
func (d *Daemon) registerHealth(e *echo.Echo) {
	e.GET("/livez", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", func(c echo.Context) error {
		checks := map[string]string{"store": "ok", "scheduler": "ok"}
		status := http.StatusOK
		if err := d.store.Ping(); err != nil {
			checks["store"] = err.Error()
			status = http.StatusServiceUnavailable
		}
		if !d.schedulerRunning.Load() {
			checks["scheduler"] = "not running"
			status = http.StatusServiceUnavailable
		}
		if d.disk != nil {
			checks["disk"] = "ok"
			if err := d.disk.Err(); err != nil {
				checks["disk"] = err.Error()
				status = http.StatusServiceUnavailable
			}
		}
		return c.JSON(status, map[string]any{"status": http.StatusText(status), "checks": checks})
	})
	e.GET("/metrics", d.metrics.handler())
}
