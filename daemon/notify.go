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

// watchdogLoop pings systemd's watchdog at half its interval, but on bbolt
// only while the store answers: a wedged database makes systemd restart the
// daemon.
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
			// On etcd the store is the cluster's, not this process's: an
			// outage is answered with 503s naming etcd and a failing /readyz,
			// and the node serves again by itself when etcd is back. A
			// restart would not bring etcd back; it would kill this node's
			// running local sessions and then fail its start until etcd
			// returns (under the unit: an outage past WatchdogSec, 60 s,
			// restarted every node). So there the watchdog vouches for this
			// process and its own file (the local sessions' bbolt file),
			// which a restart can mend.
			local := d.store
			if d.store.Engine() == "etcd" {
				local = nil
				if d.node != nil {
					local = d.node.store
				}
			}
			if local != nil {
				if err := local.Ping(); err != nil {
					d.log.Error("store check failed; withholding the watchdog ping", "error", err)
					continue
				}
			}
			_ = sdNotify("WATCHDOG=1")
		}
	}
}
