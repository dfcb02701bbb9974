package fakeupstream

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Wire constants of the Managed Agents API that the fake enforces.
const (
	// DefaultAPIKey is the key a Server accepts unless WithAPIKey says otherwise.
	DefaultAPIKey = "sk-ant-fakeupstream-key-0123456789"
	// ManagedAgentsBeta must be one of the comma-separated anthropic-beta values
	// of every call outside the Files and memory store APIs.
	ManagedAgentsBeta = "managed-agents-2026-04-01"
	// FilesBeta is what the Files API (/v1/files…) demands instead: like the
	// real API it answers 400 without it.
	FilesBeta = "files-api-2025-04-14"
	// MemoryStoresBeta is what the memory store API (/v1/memory_stores…)
	// demands, the beta the official SDKs send there.
	MemoryStoresBeta = "agent-memory-2026-07-22"
	// MaxMetadataPairs is the real API's limit on session metadata.
	MaxMetadataPairs = 16
	// MetadataDeploymentID and MetadataRunID are the session metadata keys
	// sandbox0d may write; WithRequiredMetadata makes a Server require them.
	MetadataDeploymentID = "sandbox0d.deployment_id"
	MetadataRunID        = "sandbox0d.deployment_run_id"
	// IdempotencyKeyHeader is honoured on POSTs: a repeated key replays the
	// first answer instead of applying the request again.
	IdempotencyKeyHeader = "Idempotency-Key"
)

// Routes the fake serves, in http.ServeMux pattern syntax. Faults are
// injected per route.
const (
	RouteGetAgent       = "GET /v1/agents/{agent_id}"
	RouteGetEnvironment = "GET /v1/environments/{environment_id}"
	RouteGetVault       = "GET /v1/vaults/{vault_id}"
	RouteGetFile        = "GET /v1/files/{file_id}"
	RouteGetMemoryStore = "GET /v1/memory_stores/{memory_store_id}"
	RouteUploadFile     = "POST /v1/files"
	RouteListModels     = "GET /v1/models"
	RouteArchiveSession = "POST /v1/sessions/{session_id}/archive"
	RouteCreateSession  = "POST /v1/sessions"
	RouteListSessions   = "GET /v1/sessions"
	RouteGetSession     = "GET /v1/sessions/{session_id}"
	RouteSendEvents     = "POST /v1/sessions/{session_id}/events"
	RouteListEvents     = "GET /v1/sessions/{session_id}/events"
	RouteStreamEvents   = "GET /v1/sessions/{session_id}/events/stream"
)

// maxBodyBytes bounds what the fake reads of a request body.
const maxBodyBytes = 8 << 20

// Option configures a Server.
type Option func(*options)

type options struct {
	apiKey           string
	record           bool
	allowViolations  bool
	idempotency      bool
	requiredMetadata []string
}

// WithAPIKey sets the only x-api-key the Server accepts.
func WithAPIKey(key string) Option { return func(o *options) { o.apiKey = key } }

// WithoutRecording stops the Server from keeping every request (benchmarks).
func WithoutRecording() Option { return func(o *options) { o.record = false } }

// AllowViolations keeps a Server created with New from failing its test when
// contract violations were recorded (for tests that send bad requests on
// purpose and assert on Violations).
func AllowViolations() Option { return func(o *options) { o.allowViolations = true } }

// IgnoreIdempotencyKeys makes the Server behave like an upstream that does
// not know the Idempotency-Key header: every POST is applied.
func IgnoreIdempotencyKeys() Option { return func(o *options) { o.idempotency = false } }

// WithRequiredMetadata replaces the metadata keys every created session must
// carry (none, when called with no keys).
func WithRequiredMetadata(keys ...string) Option {
	return func(o *options) { o.requiredMetadata = keys }
}

// Server is a fake Managed Agents API. It is safe for concurrent use.
type Server struct {
	// URL is the base URL to point clients at.
	URL string

	opts   options
	tb     testing.TB
	mux    *http.ServeMux
	client *http.Client
	// closeTransport tears down whatever serves URL.
	closeTransport func()
	closed         chan struct{}
	closeOnce      sync.Once

	mu    sync.Mutex
	state state

	// standalone is set by NewServer: the Server owns its listener.
	standalone *standalone
}

// New starts a Server on a loopback port and closes it when tb ends.
func New(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := newServer(tb, opts)
	hs := httptest.NewServer(s)
	s.URL = hs.URL
	s.client = hs.Client()
	s.closeTransport = hs.Close
	tb.Cleanup(s.Close)
	return s
}

// NewInMemory starts a Server that is reached through in-memory connections
// (net.Pipe) instead of a socket, so it can run inside a testing/synctest
// bubble where time is fake. Create it inside the bubble and use Client() as
// the HTTP client; URL is a placeholder host that only that client reaches.
func NewInMemory(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := newServer(tb, opts)
	mem := newMemoryNetwork(s)
	s.URL = "http://fakeupstream.invalid"
	s.client = &http.Client{Transport: mem.transport}
	s.closeTransport = mem.close
	tb.Cleanup(s.Close)
	return s
}

func newServer(tb testing.TB, opts []Option) *Server {
	o := options{
		apiKey:      DefaultAPIKey,
		record:      true,
		idempotency: true,
	}
	for _, opt := range opts {
		opt(&o)
	}
	s := &Server{opts: o, tb: tb, closed: make(chan struct{})}
	s.state = newState()
	s.mux = http.NewServeMux()
	s.mux.Handle(RouteGetAgent, s.route(s.getAgent))
	s.mux.Handle(RouteGetEnvironment, s.route(s.getEnvironment))
	s.mux.Handle(RouteGetVault, s.route(s.getVault))
	s.mux.Handle(RouteGetFile, s.route(s.getFile))
	s.mux.Handle(RouteGetMemoryStore, s.route(s.getMemoryStore))
	s.mux.Handle(RouteUploadFile, s.route(s.uploadFile))
	s.mux.Handle(RouteListModels, s.route(s.listModels))
	s.mux.Handle(RouteArchiveSession, s.route(s.archiveSession))
	s.mux.Handle(RouteCreateSession, s.route(s.createSession))
	s.mux.Handle(RouteListSessions, s.route(s.listSessions))
	s.mux.Handle(RouteGetSession, s.route(s.getSession))
	s.mux.Handle(RouteSendEvents, s.route(s.sendEvents))
	s.mux.Handle(RouteListEvents, s.route(s.listEvents))
	s.mux.Handle(RouteStreamEvents, s.route(s.streamEvents))
	s.mux.HandleFunc("/", s.unknownRoute)
	return s
}

// APIKey is the key the Server accepts.
func (s *Server) APIKey() string { return s.opts.apiKey }

// Client returns an HTTP client that reaches the Server.
func (s *Server) Client() *http.Client { return s.client }

// Handler returns the Server as an http.Handler, for mounting it elsewhere.
func (s *Server) Handler() http.Handler { return s }

// Close stops the Server: hung requests and open streams end, connections
// close. It reports recorded contract violations to the test unless
// AllowViolations was given. Close is idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.closeTransport()
		if s.opts.allowViolations || s.tb == nil {
			return
		}
		for _, v := range s.Violations() {
			s.tb.Errorf("fakeupstream: contract violation: %s %s: %s", v.Method, v.Path, v.Problem)
		}
	})
}

// ServeHTTP records the request, checks the headers every call must carry,
// and routes it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := s.nextID("req_fake")
	w.Header().Set("request-id", reqID)
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		// The client went away mid-body: nothing to answer.
		return
	}
	_, pattern := s.mux.Handler(r)
	s.record(r, pattern, body)
	if len(body) > maxBodyBytes {
		s.reject(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", maxBodyBytes))
		return
	}
	if status, problem := s.checkHeaders(r); problem != "" {
		s.reject(w, r, status, problem)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.mux.ServeHTTP(w, r)
}

// handlerFunc is a route's handler; body is the already-read request body.
type handlerFunc func(w http.ResponseWriter, r *http.Request, body []byte)

// route wraps a handler with the per-request latency and the fault injection
// of its route, and counts session creations in flight.
func (s *Server) route(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Pattern == RouteCreateSession {
			s.enterCreate()
			defer s.leaveCreate()
		}
		if !s.waitLatency(r.Context()) {
			return
		}
		f, release := s.takeFault(r.Pattern)
		if f == nil {
			h(w, r, body)
			return
		}
		s.applyFault(w, r, f, release, func(w http.ResponseWriter) { h(w, r, body) })
	})
}

func (s *Server) unknownRoute(w http.ResponseWriter, r *http.Request) {
	s.reject(w, r, http.StatusNotFound, fmt.Sprintf("no such route in the Managed Agents API fake: %s %s", r.Method, r.URL.Path))
}

// waitLatency sleeps for the configured latency; false when the request or
// the server ended first.
func (s *Server) waitLatency(ctx context.Context) bool {
	s.mu.Lock()
	d := s.state.latency
	s.mu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closed:
		return false
	}
}

// SetLatency delays every following request by d before it is handled.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	s.state.latency = d
	s.mu.Unlock()
}
