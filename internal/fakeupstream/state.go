package fakeupstream

import (
	"fmt"
	"sync/atomic"
	"time"
)

// state is everything the Server knows; guarded by Server.mu.
type state struct {
	agents       map[string]*agent
	environments map[string]*object
	vaults       map[string]*object
	files        map[string]*object
	memoryStores map[string]*object

	sessions     map[string]*session
	sessionOrder []*session // creation order; list cursors are positions in it
	// idempotent maps route+Idempotency-Key to the first answer.
	idempotent map[string]storedAnswer

	requests   []Request
	violations []Violation

	faults  map[string][]*faultEntry
	release chan struct{} // closed by Release; hung requests wait on it
	hung    int
	// changed is closed and replaced whenever a counter that Await* watches moves.
	changed chan struct{}
	latency time.Duration

	sessionsCreated    int
	createsInFlight    int
	maxCreatesInFlight int
	openStreams        int
}

func newState() state {
	return state{
		agents:       map[string]*agent{},
		environments: map[string]*object{},
		vaults:       map[string]*object{},
		files:        map[string]*object{},
		memoryStores: map[string]*object{},
		sessions:     map[string]*session{},
		idempotent:   map[string]storedAnswer{},
		faults:       map[string][]*faultEntry{},
		release:      make(chan struct{}),
		changed:      make(chan struct{}),
	}
}

// notifyLocked wakes every Await* waiter; the caller holds s.mu.
func (s *Server) notifyLocked() {
	close(s.state.changed)
	s.state.changed = make(chan struct{})
}

type storedAnswer struct {
	status int
	body   []byte
}

// agent is a stored agent; versions 1..latest exist.
type agent struct {
	id         string
	latest     int64
	createdAt  time.Time
	archivedAt *time.Time
}

// object is a stored environment, vault, file or memory store.
type object struct {
	id         string
	createdAt  time.Time
	archivedAt *time.Time
	// filename and size are set for uploaded files.
	filename string
	size     int64
}

var idSeq atomic.Int64

// nextID returns prefix_fake<n>, unique within the process, so ids of two
// Servers never collide and a test can tell whose id it sees.
func (s *Server) nextID(prefix string) string {
	return fmt.Sprintf("%s_fake%012d", prefix, idSeq.Add(1))
}

func now() time.Time { return time.Now().UTC() }

// AddAgent stores (or replaces) an agent whose versions 1..latestVersion exist.
func (s *Server) AddAgent(id string, latestVersion int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.agents[id] = &agent{id: id, latest: latestVersion, createdAt: now()}
}

// ArchiveAgent marks an agent archived; it stays readable.
func (s *Server) ArchiveAgent(id string) { s.archive(func() *time.Time { return s.agentArchived(id) }) }

// RemoveAgent deletes an agent, so it is "gone": lookups and session
// creations naming it get 404.
func (s *Server) RemoveAgent(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.state.agents, id)
}

// AddEnvironment, AddVault, AddFile and AddMemoryStore store an object.
func (s *Server) AddEnvironment(id string) { s.add(s.state.environments, id) }
func (s *Server) AddVault(id string)       { s.add(s.state.vaults, id) }
func (s *Server) AddFile(id string)        { s.add(s.state.files, id) }
func (s *Server) AddMemoryStore(id string) { s.add(s.state.memoryStores, id) }

// ArchiveEnvironment, ArchiveVault and ArchiveMemoryStore mark an object archived.
func (s *Server) ArchiveEnvironment(id string) { s.archiveObject(s.state.environments, id) }
func (s *Server) ArchiveVault(id string)       { s.archiveObject(s.state.vaults, id) }
func (s *Server) ArchiveMemoryStore(id string) { s.archiveObject(s.state.memoryStores, id) }

// RemoveEnvironment, RemoveVault and RemoveFile delete an object.
func (s *Server) RemoveEnvironment(id string) { s.remove(s.state.environments, id) }
func (s *Server) RemoveVault(id string)       { s.remove(s.state.vaults, id) }
func (s *Server) RemoveFile(id string)        { s.remove(s.state.files, id) }

// RemoveMemoryStore deletes a memory store.
func (s *Server) RemoveMemoryStore(id string) { s.remove(s.state.memoryStores, id) }

func (s *Server) add(m map[string]*object, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m[id] = &object{id: id, createdAt: now()}
}

func (s *Server) remove(m map[string]*object, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(m, id)
}

func (s *Server) archiveObject(m map[string]*object, id string) {
	s.archive(func() *time.Time {
		if o, ok := m[id]; ok {
			return s.markArchived(&o.archivedAt)
		}
		return nil
	})
}

func (s *Server) agentArchived(id string) *time.Time {
	if a, ok := s.state.agents[id]; ok {
		return s.markArchived(&a.archivedAt)
	}
	return nil
}

func (s *Server) markArchived(at **time.Time) *time.Time {
	t := now()
	*at = &t
	return &t
}

func (s *Server) archive(mark func() *time.Time) {
	s.mu.Lock()
	marked := mark() != nil
	s.mu.Unlock()
	if !marked {
		s.misuse("fakeupstream: archiving an object that was never added")
	}
}
