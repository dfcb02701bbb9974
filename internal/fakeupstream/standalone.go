package fakeupstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// A standalone Server runs outside `go test` (the benchmark harness in
// bench/): nothing fails a test at cleanup, and the upstream can go down and
// come back on the same address, which a fault test needs and httptest
// cannot do.

// standalone is the listener state of a Server made by NewServer.
type standalone struct {
	mu   sync.Mutex
	srv  *http.Server
	done chan struct{} // closed when srv.Serve returned
	addr string        // last bound address, kept across Stop
}

// NewServer returns a Server for programs that are not tests. It does not
// listen until Start. Contract violations are recorded (Violations) but fail
// nothing, and misuse of the fake itself (InjectFault on an unknown route,
// archiving an object that was never added) is recorded as a violation too:
// the program decides what to do with them.
func NewServer(opts ...Option) *Server {
	s := newServer(nil, opts)
	s.standalone = &standalone{}
	s.client = &http.Client{}
	s.closeTransport = s.Stop
	return s
}

// Start serves the Server on addr: "127.0.0.1:0" for any free loopback port,
// or the address of an earlier Start to come back where clients expect it.
// URL is set from the bound address. Starting a running Server is an error.
func (s *Server) Start(addr string) error {
	st := s.standalone
	if st == nil {
		return errors.New("fakeupstream: Start is only for servers made by NewServer")
	}
	select {
	case <-s.closed:
		return errors.New("fakeupstream: Start after Close")
	default:
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.srv != nil {
		return fmt.Errorf("fakeupstream: already serving on %s", st.addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("fakeupstream: listen on %s: %w", addr, err)
	}
	st.addr = l.Addr().String()
	s.URL = "http://" + st.addr
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	st.srv, st.done = srv, done
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	return nil
}

// Stop closes the listener and every open connection, so clients see
// refused connections and resets as if the upstream went down; requests in
// flight (delayed by latency or hung by a fault) end with their connection.
// Sessions, objects and faults are kept: Start on Addr() brings the same
// upstream back. Stopping a stopped Server does nothing.
func (s *Server) Stop() {
	st := s.standalone
	if st == nil {
		return
	}
	st.mu.Lock()
	srv, done := st.srv, st.done
	st.srv, st.done = nil, nil
	st.mu.Unlock()
	if srv == nil {
		return
	}
	_ = srv.Close()
	<-done
}

// Addr is the host:port the last Start bound ("" before the first Start).
func (s *Server) Addr() string {
	if s.standalone == nil {
		return ""
	}
	s.standalone.mu.Lock()
	defer s.standalone.mu.Unlock()
	return s.standalone.addr
}

// SessionsByRunID groups the created sessions by their
// sandbox0d.deployment_run_id metadata ("" for sessions without it), in
// creation order within each group: a group of two or more is a run that
// created more than one session.
func (s *Server) SessionsByRunID() map[string][]Session {
	out := map[string][]Session{}
	for _, sess := range s.Sessions() {
		id := sess.Metadata[MetadataRunID]
		out[id] = append(out[id], sess)
	}
	return out
}

// AwaitNoCreatesInFlight blocks until no session creation is being handled
// (e.g. after the client died mid-request) or ctx ends.
func (s *Server) AwaitNoCreatesInFlight(ctx context.Context) error {
	return s.await(ctx, func() bool { return s.state.createsInFlight == 0 })
}

// misuse reports a wrong use of the fake: a test error for a Server bound
// to a test, a recorded violation otherwise.
func (s *Server) misuse(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if s.tb != nil {
		s.tb.Errorf("%s", msg)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.violations = append(s.state.violations, Violation{Method: "-", Path: "-", Problem: msg})
}
