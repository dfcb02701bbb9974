package daemon

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// registerHealth serves /livez (the process answers) and /readyz (the store
// answers and the scheduler runs; with a local backend it also says which
// sandbox harnesses run in), without auth so probes need no key.
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
		// Which confinement local harnesses run under; informative, never
		// a reason to be unready (an unconfined daemon was told so).
		if mode := d.sandboxMode(); mode != "" {
			checks["sandbox"] = sandboxCheck(mode)
		}
		body := map[string]any{"status": http.StatusText(status), "checks": checks}
		if d.sessionLimits != nil {
			// Detail, not a failed check: the daemon serves either way.
			body["limits"] = sessionLimitsDetail(*d.sessionLimits)
		}
		return c.JSON(status, body)
	})
	e.GET("/metrics", d.metrics.handler())
}

// sandboxMode is the local backend's sandbox ("bubblewrap", "none"), or ""
// for backends that run no local processes.
func (d *Daemon) sandboxMode() string {
	if b, ok := d.backend.(interface{ SandboxMode() string }); ok {
		return b.SandboxMode()
	}
	return ""
}

// sandboxCheck is the /readyz wording of a sandbox mode: none says what it
// means.
func sandboxCheck(mode string) string {
	if mode == "none" {
		return "none (unconfined)"
	}
	return mode
}
