package connlimit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/internal/ratelog"
)

// failingListener fails its first accepts with errs, then hands out conns.
type failingListener struct {
	mu    sync.Mutex
	errs  []error
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Unlock()
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *failingListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *failingListener) Addr() net.Addr { return &net.UnixAddr{Name: "fake", Net: "unix"} }

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// Accept failures at the open-file limit are logged at WARN (once per
// interval, with the count of those left out) and retried; the caller gets
// the next good connection, never the error.
func TestAcceptFailuresAreWarnedAndRetried(t *testing.T) {
	emfile := &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	fl := &failingListener{errs: []error{emfile, emfile, emfile, emfile, emfile}, conns: make(chan net.Conn, 1), done: make(chan struct{})}
	logs := &syncBuf{}
	now := time.Unix(1_800_000_000, 0)
	l := Wrap(fl, Config{Name: "api socket", Backoff: time.Microsecond,
		Log: &ratelog.Limiter{Logger: slog.New(slog.NewTextHandler(logs, nil)), Every: time.Minute, Now: func() time.Time { return now }}})
	a, b := net.Pipe()
	defer b.Close()
	fl.conns <- a
	c, err := l.Accept()
	require.NoError(t, err)
	c.Close()
	out := logs.String()
	assert.Equal(t, 1, strings.Count(out, "accepting a connection failed"), out)
	assert.Contains(t, out, "level=WARN")
	assert.Contains(t, out, "too many open files")
	assert.Contains(t, out, "RLIMIT_NOFILE")
	assert.Contains(t, out, `listener="api socket"`)

	// A permanent error ends Accept; so does Close during a backoff.
	require.NoError(t, l.Close())
	_, err = l.Accept()
	assert.True(t, errors.Is(err, net.ErrClosed))
}

// Over the cap a connection is refused (written to, closed) and the next
// one within the cap is returned; closing a returned connection frees its
// slot.
func TestCapRefusesAndFrees(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gate := NewGate(2)
	refused := 0
	l := Wrap(ln, Config{Gate: gate, Refuse: func(c net.Conn) { fmt.Fprint(c, "busy\n") }, Refused: func() { refused++ }})
	defer l.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		return c
	}
	c1, c2 := dial(), dial()
	defer c1.Close()
	defer c2.Close()
	s1, s2 := <-accepted, <-accepted
	assert.Equal(t, 2, gate.InUse())
	c3 := dial()
	_ = c3.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(c3)
	assert.Equal(t, "busy\n", string(got), "over the cap: answered and closed")
	c3.Close()
	s1.Close()
	s1.Close() // a second Close frees nothing more
	assert.Equal(t, 1, gate.InUse())
	c4 := dial()
	defer c4.Close()
	s4 := <-accepted
	assert.Equal(t, 2, gate.InUse())
	s2.Close()
	s4.Close()
	assert.Equal(t, 0, gate.InUse())
	assert.Equal(t, 1, refused)
}
