package daemon

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sandbox0/sandbox0d/internal/connlimit"
	"github.com/sandbox0/sandbox0d/internal/ratelog"
	"github.com/sandbox0/sandbox0d/internal/wire"
)

// pressureLogEvery bounds the WARN lines of refused connections and accept
// failures: at most one per listener per interval, with a count.
const pressureLogEvery = 10 * time.Second

// diskCheckEvery is how often the data dir's free space is looked at
// (besides at once after a write fails with ENOSPC).
const diskCheckEvery = 5 * time.Second

// diskReserve refuses API writes (POST, PUT, PATCH) with 507 while the data
// dir's file system is below disk.min_free, so the reserve stays for what
// the daemon must record (the end of turns, run results). Reads and DELETE
// (which frees space) pass, as do /admin/ routes (the operator's tools,
// backup among them, must work on a full disk) and /v1/sessions routes: an
// upstream backend stores nothing here, and the local one refuses what
// writes itself while letting an interrupt through.
func (d *Daemon) diskReserve(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if d.disk == nil {
			return next(c)
		}
		switch c.Request().Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
		default:
			return next(c)
		}
		if path := c.Request().URL.Path; strings.HasPrefix(path, "/admin/") || path == "/v1/sessions" || strings.HasPrefix(path, "/v1/sessions/") {
			return next(c)
		}
		if err := d.disk.Err(); err != nil {
			// A client the API would refuse learns nothing of the disk.
			if ok, _ := d.auth.authorize(c.Request()); !ok {
				return next(c)
			}
			wire.WriteError(c.Response(), http.StatusInsufficientStorage, err.Error()+"; nothing was written")
			return nil
		}
		return next(c)
	}
}

// limitListener caps the connections one API listener holds open
// (max_connections) and keeps its accept loop alive, and logged at WARN,
// when the process or system runs out of files. Over the cap a plain
// listener answers 503 with the error envelope; a TLS one (whose client
// expects a handshake) is only closed.
func (d *Daemon) limitListener(l net.Listener, name string, max int, plain bool) net.Listener {
	if d.pressureLog == nil {
		d.pressureLog = &ratelog.Limiter{Logger: d.log, Every: pressureLogEvery}
	}
	gate := connlimit.NewGate(max)
	cfg := connlimit.Config{Gate: gate, Name: name, Log: d.pressureLog,
		Refused: func() {
			d.pressureLog.Log(slog.LevelWarn, "refused:"+name, "API connection refused: the listener is at max_connections",
				"listener", name, "max_connections", max)
		}}
	if plain {
		cfg.Refuse = func(c net.Conn) { writeRefusal(c, max) }
	}
	return connlimit.Wrap(l, cfg)
}

// writeRefusal answers a connection over max_connections.
func writeRefusal(c net.Conn, max int) {
	body, _ := json.Marshal(wire.ErrorBody{Type: "error", Error: wire.ErrorDetail{Type: wire.Overloaded,
		Message: fmt.Sprintf("the daemon already serves %d connections on this listener (max_connections); retry shortly", max)}})
	_, _ = fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: %d\r\n\r\n%s",
		http.StatusServiceUnavailable, http.StatusText(http.StatusServiceUnavailable), len(body), body)
}
