// Package sessionstest provides a scriptable in-memory sessions.Backend for
// tests of the layers above the backend (service, API, scheduler). It stands
// in for a remote Managed Agents API: it knows a set of agents, checks every
// request it gets, records it, and fails on demand.
package sessionstest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/sandbox0/sandbox0d/sessions"
)

// Backend is a scriptable sessions.Backend.
type Backend struct {
	mu       sync.Mutex
	agents   map[string]int64 // id → latest version
	archived map[string]bool
	requests []sessions.CreateRequest
	failNext []error
	// Block, when set, is waited on inside CreateSession (to hold fires in flight).
	Block chan struct{}
	// Entered receives a value when CreateSession starts (if non-nil).
	Entered chan string
	// Unavailable makes ResolveAgent/CheckReferences fail as unreachable.
	Unavailable atomic.Bool

	created atomic.Int64
}

// New returns a backend knowing the given agents (id → latest version).
func New(agents map[string]int64) *Backend {
	b := &Backend{agents: map[string]int64{}, archived: map[string]bool{}}
	for id, v := range agents {
		b.agents[id] = v
	}
	return b
}

// Name implements sessions.Backend.
func (b *Backend) Name() string { return "test" }

// SetAgent adds or updates an agent's latest version.
func (b *Backend) SetAgent(id string, latest int64) {
	b.mu.Lock()
	b.agents[id] = latest
	b.mu.Unlock()
}

// FailNext queues errors returned by the next CreateSession calls, in order.
func (b *Backend) FailNext(errs ...error) {
	b.mu.Lock()
	b.failNext = append(b.failNext, errs...)
	b.mu.Unlock()
}

// Requests returns a copy of every CreateSession request received.
func (b *Backend) Requests() []sessions.CreateRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]sessions.CreateRequest(nil), b.requests...)
}

// Created is the number of sessions created.
func (b *Backend) Created() int64 { return b.created.Load() }

// ResolveAgent implements sessions.Backend.
func (b *Backend) ResolveAgent(_ context.Context, id string, version int64) (sessions.AgentRef, error) {
	if b.Unavailable.Load() {
		return sessions.AgentRef{}, fmt.Errorf("dial test backend: %w", sessions.ErrUnavailable)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	latest, ok := b.agents[id]
	if !ok || version > latest {
		return sessions.AgentRef{}, &sessions.NotFoundError{Field: "agent", ID: id}
	}
	if b.archived[id] {
		return sessions.AgentRef{}, &sessions.NotFoundError{Field: "agent", ID: id, Archived: true}
	}
	if version == 0 {
		version = latest
	}
	return sessions.AgentRef{ID: id, Version: version}, nil
}

// Close implements sessions.Backend; there is nothing to release.
func (b *Backend) Close(context.Context) error { return nil }

// CheckReferences implements sessions.Backend; environments named
// "env_missing" do not exist.
func (b *Backend) CheckReferences(_ context.Context, refs sessions.References) error {
	if b.Unavailable.Load() {
		return fmt.Errorf("dial test backend: %w", sessions.ErrUnavailable)
	}
	if refs.EnvironmentID == "env_missing" {
		return &sessions.NotFoundError{Field: "environment_id", ID: refs.EnvironmentID}
	}
	return nil
}

// CreateSession implements sessions.Backend.
func (b *Backend) CreateSession(ctx context.Context, req sessions.CreateRequest) (string, error) {
	if b.Entered != nil {
		b.Entered <- req.DeploymentID
	}
	if b.Block != nil {
		select {
		case <-b.Block:
		case <-ctx.Done():
			return "", &sessions.RunError{Type: sessions.ErrUnknown, Message: ctx.Err().Error()}
		}
	}
	if req.DeploymentID == "" || req.RunID == "" || req.Agent.ID == "" || req.Agent.Version < 1 || len(req.InitialEvents) == 0 {
		return "", &sessions.RunError{Type: sessions.ErrSessionCreationRejected, Message: fmt.Sprintf("test backend: malformed request %+v", req)}
	}
	b.mu.Lock()
	b.requests = append(b.requests, req)
	var fail error
	if len(b.failNext) > 0 {
		fail, b.failNext = b.failNext[0], b.failNext[1:]
	}
	b.mu.Unlock()
	if fail != nil {
		return "", fail
	}
	n := b.created.Add(1)
	return fmt.Sprintf("sesn_test%06d", n), nil
}
