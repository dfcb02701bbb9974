package idempotency_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/internal/idempotency"
	"github.com/sandbox0/sandbox0d/store"
)

// clock is an injected clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// server is a real HTTP server over a real bbolt file whose POST /things
// creates a numbered thing per execution, so a duplicate execution shows.
type server struct {
	t     *testing.T
	path  string
	st    *store.Store
	srv   *httptest.Server
	clock *clock
	runs  atomic.Int64
	// hold, when set, blocks an execution until it is closed.
	hold    chan struct{}
	entered chan struct{}
	release func()       // closes hold once (also at cleanup, so a failing test does not hang Close)
	status  atomic.Int64 // answer status (default 201)
	guard   *idempotency.Guard
}

func newServer(t *testing.T, wait time.Duration) *server {
	s := &server{t: t, path: filepath.Join(t.TempDir(), "idem.db"), clock: &clock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}}
	s.open(wait)
	return s
}

func (s *server) open(wait time.Duration) {
	st, err := store.Open(s.path, store.Options{NoSync: true})
	require.NoError(s.t, err)
	s.st = st
	g := idempotency.New(idempotency.Config{Store: st, Now: s.clock.now, Wait: wait,
		Scope: func(r *http.Request) string { return r.Header.Get("X-Caller") }})
	e := echo.New()
	e.POST("/things", func(c echo.Context) error {
		body, _ := io.ReadAll(c.Request().Body)
		if s.hold != nil {
			s.entered <- struct{}{}
			<-s.hold
		}
		n := s.runs.Add(1)
		status := int(s.status.Load())
		if status == 0 {
			status = http.StatusCreated
		}
		return c.JSON(status, map[string]any{"id": n, "echo": string(body)})
	}, g.Middleware)
	e.POST("/other", func(c echo.Context) error { s.runs.Add(1); return c.NoContent(http.StatusNoContent) }, g.Middleware)
	s.srv = httptest.NewServer(e)
	s.t.Cleanup(s.close)
	s.guard = g
}

// holdExecutions makes every execution wait for s.release.
func (s *server) holdExecutions() {
	s.hold, s.entered = make(chan struct{}), make(chan struct{}, 4)
	var once sync.Once
	s.release = func() { once.Do(func() { close(s.hold) }) }
	s.t.Cleanup(s.release) // runs before the server's Close (cleanups run last first)
}

func (s *server) close() {
	if s.srv == nil {
		return
	}
	s.srv.Close()
	require.NoError(s.t, s.st.Close())
	s.srv = nil
}

func (s *server) post(path, key, body string, headers ...string) (int, string, http.Header) {
	req, err := http.NewRequest(http.MethodPost, s.srv.URL+path, strings.NewReader(body))
	require.NoError(s.t, err)
	if key != "" {
		req.Header.Set(idempotency.Header, key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := client.Do(req)
	require.NoError(s.t, err)
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	require.NoError(s.t, err)
	return res.StatusCode, string(data), res.Header
}

// client bounds every request, so a guard that lets a duplicate into a held
// handler fails the test instead of hanging it.
var client = &http.Client{Timeout: 20 * time.Second}

func TestReplayAndMismatch(t *testing.T) {
	t.Parallel()
	s := newServer(t, time.Second)
	status, body, h := s.post("/things", "k1", `{"a":1}`)
	require.Equal(t, http.StatusCreated, status)
	assert.Empty(t, h.Get(idempotency.ReplayedHeader))

	status2, body2, h2 := s.post("/things", "k1", `{"a":1}`)
	assert.Equal(t, status, status2)
	assert.Equal(t, body, body2, "the first answer is replayed byte for byte")
	assert.Equal(t, "true", h2.Get(idempotency.ReplayedHeader))
	assert.Equal(t, h.Get("Content-Type"), h2.Get("Content-Type"))
	assert.EqualValues(t, 1, s.runs.Load())

	status, body, h = s.post("/things", "k1", `{"a":2}`)
	assert.Equal(t, http.StatusUnprocessableEntity, status)
	assert.Contains(t, body, `Idempotency-Key \"k1\" was first used at 2026-12-07T12:00:00Z with another request body`)
	assert.Equal(t, "false", h.Get("x-should-retry"))

	status, body, _ = s.post("/other", "k1", `{"a":1}`)
	assert.Equal(t, http.StatusUnprocessableEntity, status)
	assert.Contains(t, body, "for POST /things, not POST /other")
	assert.EqualValues(t, 1, s.runs.Load(), "a refused reuse runs nothing")

	// Without a key, or with another one, every request runs.
	s.post("/things", "", `{"a":1}`)
	s.post("/things", "k2", `{"a":1}`)
	assert.EqualValues(t, 3, s.runs.Load())
}

func TestKeysAreScopedPerCaller(t *testing.T) {
	t.Parallel()
	s := newServer(t, time.Second)
	_, a, _ := s.post("/things", "same", `{}`, "X-Caller", "key:a")
	_, b, _ := s.post("/things", "same", `{}`, "X-Caller", "key:b")
	assert.NotEqual(t, a, b)
	assert.EqualValues(t, 2, s.runs.Load())
	_, a2, _ := s.post("/things", "same", `{}`, "X-Caller", "key:a")
	assert.Equal(t, a, a2)
}

func TestBadKeysAreRefused(t *testing.T) {
	t.Parallel()
	s := newServer(t, time.Second)
	status, body, h := s.post("/things", strings.Repeat("k", idempotency.MaxKeyLen+1), `{}`)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "at most 255")
	assert.Equal(t, "false", h.Get("x-should-retry"))
	status, body, _ = s.post("/things", "caf\xc3\xa9", `{}`)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "printable ASCII")
	assert.Zero(t, s.runs.Load())
}

func TestAnswersARetryCouldChangeAreNotStored(t *testing.T) {
	t.Parallel()
	s := newServer(t, time.Second)
	for _, status := range []int{http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusConflict, http.StatusTooManyRequests} {
		s.status.Store(int64(status))
		got, _, h := s.post("/things", "k", `{}`)
		assert.Equal(t, status, got)
		assert.Empty(t, h.Get(idempotency.ReplayedHeader))
	}
	s.status.Store(http.StatusBadRequest) // a validation error is final: stored
	s.post("/things", "k", `{}`)
	s.status.Store(http.StatusCreated)
	got, _, h := s.post("/things", "k", `{}`)
	assert.Equal(t, http.StatusBadRequest, got)
	assert.Equal(t, "true", h.Get(idempotency.ReplayedHeader))
	assert.EqualValues(t, 5, s.runs.Load())
}

func TestKeysSurviveARestart(t *testing.T) {
	t.Parallel()
	s := newServer(t, time.Second)
	_, body, _ := s.post("/things", "k", `{"x":true}`)
	s.close()
	s.open(time.Second) // the same bbolt file, a new guard with no memory
	_, again, h := s.post("/things", "k", `{"x":true}`)
	assert.Equal(t, body, again)
	assert.Equal(t, "true", h.Get(idempotency.ReplayedHeader))
	status, _, _ := s.post("/things", "k", `{"x":false}`)
	assert.Equal(t, http.StatusUnprocessableEntity, status)
	assert.EqualValues(t, 1, s.runs.Load())
}

func TestExpiryWithAnInjectedClock(t *testing.T) {
	t.Parallel()
	s := newServer(t, time.Second)
	_, first, _ := s.post("/things", "k", `{}`)
	s.post("/things", "old", `{}`)
	s.clock.add(idempotency.DefaultTTL - time.Second)
	_, again, _ := s.post("/things", "k", `{}`)
	assert.Equal(t, first, again, "still replayed just before 24 h")
	n, err := s.guard.Prune(context.Background())
	require.NoError(t, err)
	assert.Zero(t, n, "nothing is expired yet")

	s.clock.add(2 * time.Second)
	_, fresh, h := s.post("/things", "k", `{"another":"body"}`)
	assert.NotEqual(t, first, fresh, "an expired key runs again, with any body")
	assert.Empty(t, h.Get(idempotency.ReplayedHeader))
	assert.EqualValues(t, 3, s.runs.Load())

	// Prune drops "old" (expired) but not "k", stored again just now.
	n, err = s.guard.Prune(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	_, replay, _ := s.post("/things", "k", `{"another":"body"}`)
	assert.Equal(t, fresh, replay)
	s.post("/things", "old", `{}`)
	assert.EqualValues(t, 4, s.runs.Load(), "the pruned key ran again")
	require.Empty(t, s.st.Check())
}

func TestConcurrentSameKeyRunsOnce(t *testing.T) {
	t.Parallel()
	s := newServer(t, time.Minute)
	s.holdExecutions()
	results := make(chan string, 3)
	go func() { _, b, _ := s.post("/things", "k", `{}`); results <- b }()
	<-s.entered // the first is executing
	for range 2 {
		go func() { _, b, _ := s.post("/things", "k", `{}`); results <- b }()
	}
	// The others wait on the first; let them reach the guard, then release.
	require.Eventually(t, func() bool { return s.guard.Waiting("", "k") == 2 }, 10*time.Second, 5*time.Millisecond)
	s.release()
	a, b, c := <-results, <-results, <-results
	assert.Equal(t, a, b)
	assert.Equal(t, a, c)
	assert.EqualValues(t, 1, s.runs.Load())
	select {
	case <-s.entered:
		t.Fatal("a duplicate entered the handler")
	default:
	}
}

func TestInProgressIsARetryable409WhenNotWaiting(t *testing.T) {
	t.Parallel()
	s := newServer(t, -1)
	s.holdExecutions()
	done := make(chan string, 1)
	go func() { _, b, _ := s.post("/things", "k", `{}`); done <- b }()
	<-s.entered
	status, body, h := s.post("/things", "k", `{}`)
	assert.Equal(t, http.StatusConflict, status)
	assert.Equal(t, "true", h.Get("x-should-retry"))
	var env struct {
		Error struct{ Type, Message string }
	}
	require.NoError(t, json.Unmarshal([]byte(body), &env))
	assert.Equal(t, "conflict_error", env.Error.Type)
	assert.Contains(t, env.Error.Message, `a request with Idempotency-Key "k" is still in progress`)
	s.release()
	first := <-done
	_, again, _ := s.post("/things", "k", `{}`)
	assert.Equal(t, first, again)
	assert.EqualValues(t, 1, s.runs.Load())
}
