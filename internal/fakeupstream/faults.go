package fakeupstream

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
)

// Fault is a programmed misbehaviour of one route. The zero Fault does
// nothing; fields combine: Hang first, then Drop or Status, and with
// AfterCommit the request is applied (e.g. the session is created) before
// any of that happens.
type Fault struct {
	// Status answers with this HTTP status and an error envelope.
	Status int
	// ErrorType is the envelope's error.type (default: the type for Status).
	ErrorType string
	// Message is the envelope's error.message (default: a generic text).
	Message string
	// Body replaces the error envelope with this text/plain body (an answer
	// from something that is not a Managed Agents API, e.g. a wrong route).
	Body string
	// RetryAfter is sent as the retry-after header when non-empty.
	RetryAfter string
	// Hang blocks the request until Release is called, the client gives
	// up, or the Server closes.
	Hang bool
	// Drop closes the connection without an answer: a network error.
	Drop bool
	// AfterCommit applies the request first, so the client's failure is
	// ambiguous: the upstream did the work but the answer is lost.
	AfterCommit bool
}

type faultEntry struct {
	fault     Fault
	remaining int // < 0: unlimited
}

// InjectFault makes the next count requests on route (one of the Route*
// constants) misbehave as f; count < 0 means every request until
// ClearFaults. Faults on a route apply in the order they were injected.
func (s *Server) InjectFault(route string, count int, f Fault) {
	if !slices.Contains(allRoutes, route) {
		s.misuse("fakeupstream: InjectFault on unknown route %q", route)
		return
	}
	if count == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.faults[route] = append(s.state.faults[route], &faultEntry{fault: f, remaining: count})
}

// FailNext answers the next count requests on route with status and an
// error envelope carrying message.
func (s *Server) FailNext(route string, count, status int, message string) {
	s.InjectFault(route, count, Fault{Status: status, Message: message})
}

// ClearFaults removes every pending fault (requests already hung stay hung
// until Release).
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.state.faults)
}

// Release lets every request that is hung right now (and every request that
// already picked a Hang fault) continue.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.state.release)
	s.state.release = make(chan struct{})
}

// Hung is the number of requests blocked by a Hang fault right now.
func (s *Server) Hung() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.hung
}

// AwaitHung blocks until at least n requests are hung or ctx ends.
func (s *Server) AwaitHung(ctx context.Context, n int) error {
	return s.await(ctx, func() bool { return s.state.hung >= n })
}

// await blocks until cond (evaluated under s.mu) holds or ctx ends.
func (s *Server) await(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ok := cond()
		changed := s.state.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closed:
			return context.Canceled
		}
	}
}

var allRoutes = []string{
	RouteGetAgent, RouteGetEnvironment, RouteGetVault, RouteGetFile, RouteCreateSession,
	RouteListSessions, RouteGetSession, RouteSendEvents, RouteListEvents, RouteStreamEvents,
}

// takeFault consumes one use of the first pending fault of route. The
// release channel is captured now, so a Release between this and the wait
// still frees the request.
func (s *Server) takeFault(route string) (*Fault, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	queue := s.state.faults[route]
	for len(queue) > 0 && queue[0].remaining == 0 {
		queue = queue[1:]
	}
	s.state.faults[route] = queue
	if len(queue) == 0 {
		return nil, nil
	}
	e := queue[0]
	if e.remaining > 0 {
		e.remaining--
	}
	f := e.fault
	return &f, s.state.release
}

func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, f *Fault, release <-chan struct{}, handle func(http.ResponseWriter)) {
	var committed *httptest.ResponseRecorder
	if f.AfterCommit {
		committed = httptest.NewRecorder()
		handle(committed)
	}
	if f.Hang && !s.hang(r.Context(), release) {
		return
	}
	switch {
	case f.Drop:
		// net/http closes the connection without writing a response.
		panic(http.ErrAbortHandler)
	case f.Status != 0:
		if f.RetryAfter != "" {
			w.Header().Set("retry-after", f.RetryAfter)
		}
		if f.Body != "" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(f.Status)
			_, _ = w.Write([]byte(f.Body))
			return
		}
		msg := f.Message
		if msg == "" {
			msg = "injected fault: " + http.StatusText(f.Status)
		}
		s.writeError(w, f.Status, f.ErrorType, msg)
	case committed != nil:
		for k, vs := range committed.Header() {
			w.Header()[k] = vs
		}
		w.WriteHeader(committed.Code)
		_, _ = w.Write(committed.Body.Bytes())
	default:
		handle(w)
	}
}

// hang blocks until released; false when the request or the Server ended.
func (s *Server) hang(ctx context.Context, release <-chan struct{}) bool {
	s.mu.Lock()
	s.state.hung++
	s.notifyLocked()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.state.hung--
		s.notifyLocked()
		s.mu.Unlock()
	}()
	select {
	case <-release:
		return true
	case <-ctx.Done():
		return false
	case <-s.closed:
		return false
	}
}
