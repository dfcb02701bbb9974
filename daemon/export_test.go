package daemon

import (
	"log/slog"
	"net"
)

// LimitListener is the wrapper every API listener gets (max_connections,
// accept failures at WARN), for tests that inject a failing listener.
func LimitListener(l net.Listener, log *slog.Logger, name string, max int) net.Listener {
	d := &Daemon{log: log}
	return d.limitListener(l, name, max, true)
}
