// Package connlimit caps the connections a listener holds open and keeps
// its accept loop alive through resource exhaustion.
//
// Over the cap a new connection is accepted and closed at once (after an
// optional short refusal such as an HTTP 503), so it never holds a file
// descriptor for longer than that write: a client that opens connections
// faster than it finishes them cannot make the process run out of files.
// Temporary accept failures (EMFILE, ENFILE, ENOBUFS, ENOMEM,
// ECONNABORTED) are logged at WARN, at most once per interval with a count,
// and retried with a capped backoff, instead of reaching the caller (whose
// own handling, net/http's, logs every one of them).
package connlimit

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sandbox0/sandbox0d/internal/ratelog"
)

// Gate counts the connections held by one or more listeners against one
// cap. A nil *Gate has no cap.
type Gate struct {
	max  int64
	used atomic.Int64
}

// NewGate returns a gate for at most max connections; max <= 0 means no cap.
func NewGate(max int) *Gate {
	if max <= 0 {
		return nil
	}
	return &Gate{max: int64(max)}
}

// InUse is how many connections hold the gate.
func (g *Gate) InUse() int {
	if g == nil {
		return 0
	}
	return int(g.used.Load())
}

// Max is the cap (0 for a nil gate: none).
func (g *Gate) Max() int {
	if g == nil {
		return 0
	}
	return int(g.max)
}

func (g *Gate) acquire() bool {
	if g == nil {
		return true
	}
	if g.used.Add(1) > g.max {
		g.used.Add(-1)
		return false
	}
	return true
}

func (g *Gate) release() {
	if g != nil {
		g.used.Add(-1)
	}
}

// Config configures Wrap.
type Config struct {
	// Gate caps the connections; nil means no cap.
	Gate *Gate
	// Refuse, if set, writes a short refusal to a connection over the cap
	// before it is closed. It must not block: the connection has a write
	// deadline of refuseWriteTimeout.
	Refuse func(net.Conn)
	// Refused, if set, is called once per connection refused over the cap
	// (counting, logging).
	Refused func()
	// Log receives accept failures at WARN; nil discards them.
	Log *ratelog.Limiter
	// Name says which listener in log lines ("api socket", "egress").
	Name string
	// Backoff is the first wait after a temporary accept failure (doubled
	// up to a second); 0 means 5ms.
	Backoff time.Duration
}

// refuseWriteTimeout bounds the refusal write. A fresh connection's send
// buffer is empty, so a short answer never waits; the deadline is only
// there should the peer be odd.
const refuseWriteTimeout = 100 * time.Millisecond

// Wrap returns l with cfg's cap and accept handling.
func Wrap(l net.Listener, cfg Config) net.Listener {
	if cfg.Backoff <= 0 {
		cfg.Backoff = 5 * time.Millisecond
	}
	return &listener{Listener: l, cfg: cfg, closed: make(chan struct{})}
}

type listener struct {
	net.Listener
	cfg       Config
	closed    chan struct{}
	closeOnce sync.Once
}

// Accept returns the next connection within the cap.
func (l *listener) Accept() (net.Conn, error) {
	var wait time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !Temporary(err) {
				return nil, err
			}
			wait = min(max(2*wait, l.cfg.Backoff), time.Second)
			if l.cfg.Log != nil {
				l.cfg.Log.Log(slog.LevelWarn, "accept:"+l.cfg.Name, "accepting a connection failed; retrying",
					"listener", l.cfg.Name, "error", err, "retry_in", wait.String(), "hint", hint(err))
			}
			timer := time.NewTimer(wait)
			select {
			case <-timer.C:
			case <-l.closed:
				timer.Stop()
				return nil, net.ErrClosed
			}
			continue
		}
		wait = 0
		if !l.cfg.Gate.acquire() {
			l.refuse(c)
			continue
		}
		return &conn{Conn: c, gate: l.cfg.Gate}, nil
	}
}

func (l *listener) refuse(c net.Conn) {
	// Counted and logged first, so whoever sees the refusal also sees the
	// count.
	if l.cfg.Refused != nil {
		l.cfg.Refused()
	}
	if l.cfg.Refuse != nil {
		_ = c.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
		l.cfg.Refuse(c)
	}
	_ = c.Close()
}

// Close closes the listener and ends a pending backoff.
func (l *listener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// Temporary reports whether an accept error is worth retrying: the process
// or the system ran short of something, or one client gave up early.
func Temporary(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EAGAIN, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary() && !errors.Is(err, net.ErrClosed)
}

// hint says what to do about an accept failure.
func hint(err error) string {
	switch {
	case errors.Is(err, syscall.EMFILE):
		return "the daemon is at its open-file limit (RLIMIT_NOFILE; LimitNOFILE= in the unit); lower max_connections or local.egress.max_connections_per_session, or raise the limit"
	case errors.Is(err, syscall.ENFILE):
		return "the system is at its open-file limit (fs.file-max)"
	case errors.Is(err, syscall.ENOBUFS), errors.Is(err, syscall.ENOMEM):
		return "the system is short of memory"
	}
	return "transient"
}

// conn gives its gate slot back when closed, once.
type conn struct {
	net.Conn
	gate *Gate
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.gate.release)
	return err
}
