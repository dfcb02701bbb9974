package egress

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
)

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fakeClock is the log rate limit's clock, moved by the test.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func limitedNetwork() sandbox.Network {
	return sandbox.Network{Limited: true, AllowedHosts: []string{"allowed.example"}, Environment: "env_lim"}
}

// halfConnect opens a connection to sock and sends the start of a CONNECT
// and nothing more, as the hostile harness of issue 22 did.
func halfConnect(t *testing.T, sock string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", sock)
	require.NoError(t, err)
	// A refused connection may be answered and closed before this write.
	_, _ = io.WriteString(c, "CONNECT ")
	return c
}

func (p *Proxy) inUse(sessionID string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if sc, ok := p.sessions[sessionID]; ok {
		return sc.gate.InUse()
	}
	return 0
}

// A session holding its cap of half-sent connections gets a 503 naming the
// cap for the next one, at once; its other sockets share the cap; another
// session is not affected; a freed slot is usable again; the refusals are
// logged at WARN once per interval with the count of those left out.
func TestSessionConnectionCap(t *testing.T) {
	logs := &logBuffer{}
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	p, err := New(Config{MaxConnectionsPerSession: 8, HeaderTimeout: time.Minute, Now: clock.Now,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.NoError(t, err)
	defer p.Close()
	sockA1, releaseA1, err := p.Listen("ses_a", limitedNetwork())
	require.NoError(t, err)
	defer releaseA1()
	sockA2, releaseA2, err := p.Listen("ses_a", limitedNetwork())
	require.NoError(t, err)
	defer releaseA2()
	sockB, releaseB, err := p.Listen("ses_b", limitedNetwork())
	require.NoError(t, err)
	defer releaseB()

	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := range 8 {
		sock := sockA1
		if i%2 == 1 {
			sock = sockA2 // the cap is the session's, not one socket's
		}
		held = append(held, halfConnect(t, sock))
	}
	require.Eventually(t, func() bool { return p.inUse("ses_a") == 8 }, 10*time.Second, 5*time.Millisecond)

	for range 5 {
		c := halfConnect(t, sockA2)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second)) // a failure, not a hang, if nothing comes
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err, "a refused connection is answered, not left hanging")
		body, _ := io.ReadAll(resp.Body)
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		assert.Contains(t, string(body), "local.egress.max_connections_per_session")
		assert.Contains(t, string(body), "8 connections")
		c.Close()
	}
	assert.EqualValues(t, 5, p.Refused())
	assert.Equal(t, 8, p.inUse("ses_a"), "refused connections hold no slot")

	// Another session still gets answers (a denial here).
	c, err := net.Dial("unix", sockB)
	require.NoError(t, err)
	_, _ = io.WriteString(c, "CONNECT denied.example:443 HTTP/1.1\r\nHost: denied.example:443\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
	require.NoError(t, err)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	c.Close()

	// A freed slot takes a new connection.
	held[0].Close()
	held = held[1:]
	require.Eventually(t, func() bool { return p.inUse("ses_a") == 7 }, 10*time.Second, 5*time.Millisecond)
	held = append(held, halfConnect(t, sockA1))
	require.Eventually(t, func() bool { return p.inUse("ses_a") == 8 }, 10*time.Second, 5*time.Millisecond)

	assert.Equal(t, 1, strings.Count(logs.String(), "egress connection refused"), "one WARN line per interval: %s", logs)
	clock.Add(logEvery)
	c = halfConnect(t, sockA1)
	_, _ = io.ReadAll(c) // refused: answered and closed
	c.Close()
	require.Eventually(t, func() bool { return strings.Count(logs.String(), "egress connection refused") == 2 }, 10*time.Second, 5*time.Millisecond)
	assert.Contains(t, logs.String(), "suppressed=4", "the next line counts those left out")
	assert.Contains(t, logs.String(), "level=WARN")

	// Releasing every socket of a session forgets its cap.
	releaseA1()
	releaseA2()
	p.mu.Lock()
	_, still := p.sessions["ses_a"]
	p.mu.Unlock()
	assert.False(t, still)
}

// A connection that does not finish its header in time is closed and its
// slot freed.
func TestHeaderTimeoutFreesTheSlot(t *testing.T) {
	p, err := New(Config{MaxConnectionsPerSession: 2, HeaderTimeout: 200 * time.Millisecond})
	require.NoError(t, err)
	defer p.Close()
	sock, release, err := p.Listen("ses_slow", limitedNetwork())
	require.NoError(t, err)
	defer release()
	c := halfConnect(t, sock)
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, _ = io.ReadAll(c) // the proxy closes it (after a 408, whatever it says)
	require.Eventually(t, func() bool { return p.inUse("ses_slow") == 0 }, 10*time.Second, 5*time.Millisecond)
}

// Denials of one session are logged at WARN at most once per interval,
// with the count of those left out.
func TestDenialsAreRateLimited(t *testing.T) {
	logs := &logBuffer{}
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	p, err := New(Config{Now: clock.Now, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.NoError(t, err)
	defer p.Close()
	sock, release, err := p.Listen("ses_deny", limitedNetwork())
	require.NoError(t, err)
	defer release()
	deny := func() {
		c, err := net.Dial("unix", sock)
		require.NoError(t, err)
		defer c.Close()
		_, _ = io.WriteString(c, "CONNECT denied.example:443 HTTP/1.1\r\nHost: denied.example:443\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
		require.NoError(t, err)
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
	}
	for range 50 {
		deny()
	}
	_, denied := p.Counts()
	assert.EqualValues(t, 50, denied, "every denial is counted")
	assert.Equal(t, 1, strings.Count(logs.String(), "egress denied"))
	clock.Add(logEvery)
	deny()
	assert.Equal(t, 2, strings.Count(logs.String(), "egress denied"))
	assert.Contains(t, logs.String(), "suppressed=49")
}
