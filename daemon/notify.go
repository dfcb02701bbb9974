package daemon

import (
	"context"
	"net"
	"os"
	"strconv"
	"time"
)

// sdNotify sends a state line to systemd's NOTIFY_SOCKET, if any. It is a
// no-op outside systemd. The protocol is one datagram per state.
func sdNotify(state string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	if addr[0] == '@' {
		addr = "\x00" + addr[1:] // abstract namespace
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}

// watchdogLoop pings systemd's watchdog at half its interval, but only while
// the store answers: a wedged database makes systemd restart the daemon.
func (d *Daemon) watchdogLoop(ctx context.Context) {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return
	}
	ticker := time.NewTicker(time.Duration(usec) * time.Microsecond / 2)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if err := d.store.Ping(); err != nil {
				d.log.Error("store check failed; withholding the watchdog ping", "error", err)
				continue
			}
			_ = sdNotify("WATCHDOG=1")
		}
	}
}
