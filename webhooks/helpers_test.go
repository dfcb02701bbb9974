package webhooks

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks/event"
)

// newKey returns a fresh whsec_ key.
func newKey(seed byte) string {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = seed + byte(i)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(raw)
}

func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), store.FileName), store.Options{NoSync: true, MaxBatchDelay: time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() {
		require.Empty(t, st.Check())
		_ = st.Close()
	})
	return st
}

// received is one request a receiver got.
type received struct {
	body    []byte
	headers http.Header
	at      time.Time
}

// receiver is a webhook endpoint: answer decides each response from the
// 1-based request number; every request is recorded and announced on got.
type receiver struct {
	mu     sync.Mutex
	reqs   []received
	got    chan received
	answer func(n int, w http.ResponseWriter, r *http.Request)
}

func newReceiver(answer func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	if answer == nil {
		answer = func(int, http.ResponseWriter, *http.Request) {}
	}
	return &receiver{got: make(chan received, 100_000), answer: answer}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := received{body: body, headers: r.Header.Clone(), at: time.Now()}
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, rec)
	n := len(rc.reqs)
	rc.mu.Unlock()
	rc.got <- rec
	rc.answer(n, w, r)
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.reqs...)
}

// serve starts rc on a real loopback port.
func serve(t testing.TB, rc *receiver) string {
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return srv.URL + "/hook"
}

// next waits for the next request (bounded, so a lost delivery fails the
// test instead of hanging it).
func (rc *receiver) next(t testing.TB) received {
	t.Helper()
	select {
	case r := <-rc.got:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery within 30s")
		return received{}
	}
}

// fastConfig retries quickly so real-time tests stay short.
func fastConfig(endpoints ...EndpointConfig) Config {
	c := DefaultConfig()
	c.Endpoints = endpoints
	c.RetrySchedule = []time.Duration{20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond}
	c.Timeout = 2 * time.Second
	return c
}

// startDispatcher runs a dispatcher until the test ends.
func startDispatcher(t testing.TB, st *store.Store, cfg Config, opts Options) *Dispatcher {
	t.Helper()
	opts.Store = st
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	d, err := New(cfg, opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = d.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return d
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// appendEvent commits one event as a change would, and notifies.
func appendEvent(t testing.TB, st *store.Store, d *Dispatcher, typ, objectID string) store.WebhookEvent {
	t.Helper()
	e := store.WebhookEvent{ID: event.NewID(), Type: typ, ObjectID: objectID, CreatedAt: time.Now().UTC()}
	require.NoError(t, st.Update(func(tx *store.Tx) error { return tx.AppendWebhookEvent(e) }))
	d.Notify()
	return e
}

func sdkUnwrap(body []byte, h http.Header, key string) (*anthropic.UnwrapWebhookEvent, error) {
	client := anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithAPIKey("unused"), option.WithWebhookKey(key))
	return client.Beta.Webhooks.Unwrap(body, h)
}

// handlerTransport serves requests with an in-process handler: for
// synctest bubbles, where a real socket would keep time from advancing.
type handlerTransport struct{ h http.Handler }

func (ht handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		ht.h.ServeHTTP(rec, r)
	}()
	select {
	case <-done:
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
	return rec.Result(), nil
}

// hostTransport routes by host to per-host handlers.
type hostTransport map[string]http.Handler

func (m hostTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return handlerTransport{m[r.URL.Host]}.RoundTrip(r)
}
