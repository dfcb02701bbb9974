package fakeupstream

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"

	"github.com/sandbox0/sandbox0d/internal/wire"
)

// Request is one request the Server received, as it arrived.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
	// Route is the Route* constant the request matched ("" for none).
	Route string
}

// Violation is a request that broke the upstream contract.
type Violation struct {
	Method  string
	Path    string
	Problem string
}

func (s *Server) record(r *http.Request, route string, body []byte) {
	if !s.opts.record {
		return
	}
	req := Request{
		Method: r.Method,
		Path:   r.URL.Path,
		Query:  r.URL.Query(),
		Header: r.Header.Clone(),
		Body:   body,
		Route:  route,
	}
	s.mu.Lock()
	s.state.requests = append(s.state.requests, req)
	s.mu.Unlock()
}

// Requests returns every recorded request in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.state.requests)
}

// RequestsTo returns the recorded requests that matched route.
func (s *Server) RequestsTo(route string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Request
	for _, r := range s.state.requests {
		if r.Route == route {
			out = append(out, r)
		}
	}
	return out
}

// Violations returns every recorded contract violation.
func (s *Server) Violations() []Violation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.state.violations)
}

// SessionsCreated is the number of sessions the Server created (a replayed
// idempotent request does not count).
func (s *Server) SessionsCreated() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.sessionsCreated
}

// CreatesInFlight is the number of POST /v1/sessions requests being handled
// right now (including ones delayed by latency or hung by a fault).
func (s *Server) CreatesInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.createsInFlight
}

// MaxCreatesInFlight is the highest CreatesInFlight ever observed.
func (s *Server) MaxCreatesInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.maxCreatesInFlight
}

// AwaitCreatesInFlight blocks until at least n session creations are in
// flight or ctx ends.
func (s *Server) AwaitCreatesInFlight(ctx context.Context, n int) error {
	return s.await(ctx, func() bool { return s.state.createsInFlight >= n })
}

// AwaitStreams blocks until at least n event streams are open or ctx ends.
func (s *Server) AwaitStreams(ctx context.Context, n int) error {
	return s.await(ctx, func() bool { return s.state.openStreams >= n })
}

func (s *Server) enterCreate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.createsInFlight++
	s.state.maxCreatesInFlight = max(s.state.maxCreatesInFlight, s.state.createsInFlight)
	s.notifyLocked()
}

func (s *Server) leaveCreate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.createsInFlight--
	s.notifyLocked()
}

// violate records a contract violation.
func (s *Server) violate(r *http.Request, problem string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.violations = append(s.state.violations, Violation{Method: r.Method, Path: r.URL.Path, Problem: problem})
}

// reject records a violation and answers it.
func (s *Server) reject(w http.ResponseWriter, r *http.Request, status int, problem string) {
	s.violate(r, problem)
	s.writeError(w, status, "", problem)
}

// writeError writes the Managed Agents error envelope with the request id
// already set on w.
func (s *Server) writeError(w http.ResponseWriter, status int, errType, message string) {
	if errType == "" {
		errType = wire.KindForStatus(status)
	}
	body, _ := json.Marshal(wire.ErrorBody{
		Type:      "error",
		Error:     wire.ErrorDetail{Type: errType, Message: message},
		RequestID: w.Header().Get("request-id"),
	})
	writeRaw(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeRaw(w, status, body)
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
