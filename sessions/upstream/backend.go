// Package upstream is the session backend that creates sessions on a
// Managed Agents-compatible HTTP API (Anthropic's, a Sandbox0 install, or
// another implementation) and reverse-proxies every other /v1/… request to
// it, so one base URL serves every SDK call.
//
// It owns: the upstream HTTP client (credentials, beta headers, timeouts, a
// bounded connection pool), agent and reference lookups, session creation
// with initial-event delivery, the classification of upstream failures into
// run error types (classify.go holds the one table), retries with capped
// exponential backoff and full jitter inside a bounded window, the bound on
// creations in flight, and the reverse proxy.
//
// It must not touch storage, scheduling, the Deployments API routes, or
// auto-pause decisions: it returns classified errors and the caller records
// them. Repository tokens reach it decrypted, live only in the request body
// of one session creation, and never appear in a log line, an error
// message, or a proxied response.
package upstream

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/sandbox0/sandbox0d/sessions"
)

// Backend creates sessions on an upstream Managed Agents API.
type Backend struct {
	base           *url.URL
	apiKey         string
	client         *http.Client
	requestTimeout time.Duration
	retryWindow    time.Duration
	backoff        backoff
	log            *slog.Logger

	// slots bounds session creations in flight; a burst queues on it.
	slots    chan struct{}
	inFlight atomic.Int64

	proxy        http.Handler
	maxProxyBody int64
}

var (
	_ sessions.Backend       = (*Backend)(nil)
	_ sessions.SessionRouter = (*Backend)(nil)
)

// Close implements sessions.Backend: it drops idle upstream connections.
// Calls in flight end with their own contexts.
func (b *Backend) Close(context.Context) error {
	b.client.CloseIdleConnections()
	return nil
}

// New validates cfg and builds the backend. A config error names its key.
func New(cfg Config) (*Backend, error) {
	s, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	b := &Backend{
		base:           s.base,
		apiKey:         s.apiKey,
		client:         s.apiClient,
		requestTimeout: s.requestTimeout,
		retryWindow:    s.retryWindow,
		backoff:        defaultBackoff,
		log:            s.log.With("backend", "upstream", "upstream", s.base.Host),
		slots:          make(chan struct{}, s.maxConcurrency),
		maxProxyBody:   s.maxProxyBody,
	}
	b.proxy = b.newProxy(s.proxyTransport)
	return b, nil
}

// Name labels the backend in logs and metrics.
func (b *Backend) Name() string { return "upstream" }

// InFlight is the number of session creations holding a slot right now.
func (b *Backend) InFlight() int { return int(b.inFlight.Load()) }

// SessionHandler is the reverse proxy for every /v1/… route the daemon does
// not serve itself.
func (b *Backend) SessionHandler() http.Handler { return b.proxy }

// ProxiesSessions tells the API layer that SessionHandler is a reverse
// proxy: its requests carry the client's own betas and bodies up to
// upstream.max_proxy_body, not the API's own beta check and body limit.
func (b *Backend) ProxiesSessions() bool { return true }

// acquireSlot waits for a creation slot, in arrival order, until ctx ends.
func (b *Backend) acquireSlot(ctx context.Context) (release func(), err error) {
	select {
	case b.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for one of %d session-creation slots (upstream.max_concurrency): %w", cap(b.slots), context.Cause(ctx))
	}
	b.inFlight.Add(1)
	return func() {
		b.inFlight.Add(-1)
		<-b.slots
	}, nil
}
