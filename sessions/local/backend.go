package local

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
	"github.com/sandbox0/sandbox0d/store"
)

// Causes a session's context is canceled with; they decide how it ends.
var (
	errInterrupted   = errors.New("interrupted by a user.interrupt event")
	errTimedOut      = errors.New("session timed out")
	errOutputCapped  = errors.New("harness output exceeded the environment's max_output_bytes")
	errTooManyEvents = errors.New("harness output exceeded the environment's max_events")
	errShutdown      = errors.New("the daemon shut down during the turn; it was stopped and the session is idle")
	errShutdownEarly = errors.New("the daemon shut down before the turn started; the session is idle")
	errDeleted       = errors.New("the session was deleted")
)

// Backend runs sessions on this machine. It implements sessions.Backend and
// sessions.SessionRouter and is safe for concurrent use.
type Backend struct {
	cfg     Config
	log     *slog.Logger
	store   sessionStore
	cursors *store.Cursors     // page tokens of both lists
	agents  map[string][]Agent // by id, ascending version
	envs    map[string]Environment
	vaults  map[string]Vault
	// catalog holds the agents, environments, vaults and credentials
	// created through the API (the maps above are the config's), in the
	// store's catalog namespace: shared by every node in a cluster.
	catalog  catalogStore
	sealerMu sync.RWMutex
	sealer   Sealer            // seals credential secrets; swapped by SetSealer
	baseEnv  map[string]string // the daemon's environment at start, for passthrough
	sandbox  sandbox.Sandbox   // starts every harness process
	bootID   string
	// firstSeen is when each configured agent version, environment and vault
	// was first seen by the catalog's store: their created_at. Read once at
	// start: the config objects it times change only with a restart.
	firstSeen map[string]time.Time

	// runCtx parents every session; Close cancels it once its deadline has
	// passed with harnesses still running.
	runCtx   context.Context
	stopRuns context.CancelCauseFunc
	runners  sync.WaitGroup

	mu       sync.Mutex
	running  int             // turns holding one of local.max_concurrent_sessions slots
	waiting  []chan struct{} // turns waiting for a slot, oldest first
	closing  bool
	active   map[string]*activeSession // sessions with a turn running or waiting
	watchers map[string]chan struct{}  // closed at a session's next change
	pruning  map[string]bool           // sessions being deleted by retention
	// rotated holds tokens given by a resource update for clones not yet
	// run, by session and resource id (resources.go).
	rotated map[string]map[string]string

	// endRetried, set by tests before any session starts, hears every
	// failed attempt to record the end of a turn.
	endRetried chan error
	// shutdown bounds the harness grace periods once Close has a deadline.
	shutdown shutdownBudget
	// workspacePoll is how often a running turn's workspace is measured;
	// tests shorten it before any session starts.
	workspacePoll time.Duration

	stopJanitor context.CancelFunc
	janitorDone chan struct{}
}

var (
	_ sessions.Backend       = (*Backend)(nil)
	_ sessions.SessionRouter = (*Backend)(nil)
)

// New opens the local backend on the daemon's bbolt file (ns: its local
// namespace; cfg.Catalog, when set, is where the catalog lives instead of
// the same store's catalog namespace). Sessions a
// previous daemon process left in a turn get a session.error saying the
// daemon restarted and go idle, ready for the next message; their harnesses,
// if still alive, are killed.
func New(ns *store.Namespace, cfg Config) (*Backend, error) {
	if ns == nil {
		return nil, errors.New("local session backend: no database")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("local session backend: %w", err)
	}
	cfg = cfg.withDefaults()
	var err error
	if cfg.WorkspaceDir, err = filepath.Abs(cfg.WorkspaceDir); err != nil {
		return nil, fmt.Errorf("local.workspace_dir: %w", err)
	}
	if cfg.FilesDir != "" {
		if cfg.FilesDir, err = filepath.Abs(cfg.FilesDir); err != nil {
			return nil, fmt.Errorf("local.files_dir: %w", err)
		}
	}
	if err := os.MkdirAll(cfg.WorkspaceDir, 0o700); err != nil {
		return nil, fmt.Errorf("local.workspace_dir: %w", err)
	}

	catalogNS := cfg.Catalog
	if catalogNS == nil {
		// One box: the catalog shares the sessions' store.
		if catalogNS, err = ns.Sibling(store.NamespaceCatalog); err != nil {
			return nil, fmt.Errorf("local session backend: %w", err)
		}
	}
	b := &Backend{
		cfg:      cfg,
		log:      cfg.Logger.With("backend", "local"),
		store:    sessionStore{ns: ns, events: cfg.Events},
		cursors:  ns.Cursors(),
		agents:   map[string][]Agent{},
		envs:     map[string]Environment{},
		vaults:   map[string]Vault{},
		catalog:  catalogStore{ns: catalogNS},
		sealer:   cfg.Sealer,
		baseEnv:  environMap(os.Environ()),
		sandbox:  cfg.Sandbox,
		bootID:   currentBootID(),
		active:   map[string]*activeSession{},
		watchers: map[string]chan struct{}{},
		pruning:  map[string]bool{},

		workspacePoll: defaultWorkspacePoll,
	}
	if cfg.Index != nil {
		// Issue 26: one index and one cursor secret for the whole cluster,
		// so a page token from one node works on another.
		b.store.index = &sessionIndex{ns: cfg.Index, local: ns, node: cfg.Node, log: b.log, flushed: map[string]string{}}
		// Tokens start past any a previous process left in the file, so a
		// new change never repeats a pending entry's token.
		b.store.index.token.Store(uint64(time.Now().UnixNano()))
		b.cursors = cfg.Index.Cursors()
	}
	for _, a := range cfg.Agents {
		b.agents[a.ID] = append(b.agents[a.ID], a)
	}
	for id := range b.agents {
		slices.SortFunc(b.agents[id], func(x, y Agent) int { return cmp.Compare(x.Version, y.Version) })
	}
	for _, e := range cfg.Environments {
		b.envs[e.ID] = e
	}
	for i, v := range cfg.Vaults {
		b.vaults[v.ID] = v
		if v.Raw {
			b.log.Warn("vault hands its real values to harnesses: a harness can print them, write them anywhere "+
				"and send them to any host it reaches; remove project: false to give it placeholders",
				"vault_id", v.ID, "key", fmt.Sprintf("local.vaults[%d].project", i))
		}
	}
	if err := b.checkConfigIDs(); err != nil {
		return nil, fmt.Errorf("local session backend: %w", err)
	}
	if b.firstSeen, err = b.catalog.firstSeen(b.catalogKeys(), b.cfg.Now()); err != nil {
		return nil, fmt.Errorf("local session backend: %w", err)
	}
	// Issue 26 (cluster mode): the sessions deleted through other nodes
	// while this one was down go first, so no restart recovery reports on
	// them. The full copy of the records into the index is made once the
	// node holds a lease (SyncIndex), when other nodes can reach them.
	if err := b.applyTombstones(); err != nil {
		b.log.Warn("cluster: the deletes made while this node was away could not be read; they are applied once etcd answers", "error", err)
	}
	if err := b.recoverAfterRestart(); err != nil {
		return nil, fmt.Errorf("local session backend: %w", err)
	}
	b.runCtx, b.stopRuns = context.WithCancelCause(context.Background())
	janitorCtx, stop := context.WithCancel(context.Background())
	b.stopJanitor, b.janitorDone = stop, make(chan struct{})
	go b.runJanitor(janitorCtx)
	return b, nil
}

// Name implements sessions.Backend.
func (b *Backend) Name() string { return "local" }

// ResolveAgent implements sessions.Backend: version 0 is the highest
// configured version of the agent.
func (b *Backend) ResolveAgent(_ context.Context, agentID string, version int64) (sessions.AgentRef, error) {
	a, ok := b.agent(agentID, version)
	if !ok {
		return sessions.AgentRef{}, b.agentNotFound(agentID, version)
	}
	return sessions.AgentRef{ID: a.ID, Version: a.Version}, nil
}

// CheckReferences implements sessions.Backend. Agents, environments and
// vaults may be config-declared or created through the API; archived API
// objects are refused for new sessions and deployments.
func (b *Backend) CheckReferences(_ context.Context, refs sessions.References) error {
	a, ok := b.agent(refs.Agent.ID, refs.Agent.Version)
	if !ok {
		return b.agentNotFound(refs.Agent.ID, refs.Agent.Version)
	}
	if a.archived {
		return &sessions.NotFoundError{Field: "agent", ID: refs.Agent.ID, Archived: true}
	}
	if _, archived, ok := b.environmentState(refs.EnvironmentID); !ok {
		return &sessions.NotFoundError{Field: "environment_id", ID: refs.EnvironmentID}
	} else if archived {
		return &sessions.NotFoundError{Field: "environment_id", ID: refs.EnvironmentID, Archived: true}
	}
	for i, id := range refs.VaultIDs {
		if _, ok := b.vaults[id]; ok {
			continue
		}
		// A vault created through the API (vault_api.go).
		found, archived := b.apiVaultState(id)
		if !found {
			return &sessions.NotFoundError{Field: fmt.Sprintf("vault_ids[%d]", i), ID: id}
		} else if archived {
			return &sessions.NotFoundError{Field: fmt.Sprintf("vault_ids[%d]", i), ID: id, Archived: true}
		}
	}
	// A vault whose credentials this daemon cannot project is refused now,
	// not at the session's first turn.
	if fe := b.checkVaultsProjectable(refs.VaultIDs); fe != nil {
		return fe
	}
	for _, id := range refs.FileIDs {
		if checkFileID(b.cfg.FilesDir, id) != nil {
			return &sessions.NotFoundError{Field: "file_id", ID: id}
		}
	}
	return nil
}

func (b *Backend) agentNotFound(id string, version int64) error {
	if version != 0 && len(b.agents[id]) > 0 {
		return &sessions.NotFoundError{Field: "agent", ID: fmt.Sprintf("%s version %d", id, version)}
	}
	return &sessions.NotFoundError{Field: "agent", ID: id}
}

// Done returns a channel closed once the session has no turn running or
// waiting (it is idle, terminated or gone).
func (b *Backend) Done(sessionID string) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if as, ok := b.active[sessionID]; ok {
		return as.done
	}
	closed := make(chan struct{})
	close(closed)
	return closed
}

// StderrTail returns the last bytes (at most 64 KiB) the harness of a
// session's latest finished turn wrote to stderr.
func (b *Backend) StderrTail(sessionID string) ([]byte, error) {
	out, err := b.store.stderr(sessionID)
	if errors.Is(err, errSessionNotFound) {
		return nil, fmt.Errorf("session %s: %w", sessionID, err)
	}
	return out, err
}

// watch returns a channel that will be closed at the session's next change.
// Take it before reading events so no append can be missed.
func (b *Backend) watch(sessionID string) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch, ok := b.watchers[sessionID]
	if !ok {
		ch = make(chan struct{})
		b.watchers[sessionID] = ch
	}
	return ch
}

// notify wakes the followers of a session after it changed.
func (b *Backend) notify(sessionID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.notifyLocked(sessionID)
}

func (b *Backend) notifyLocked(sessionID string) {
	if ch, ok := b.watchers[sessionID]; ok {
		close(ch)
		delete(b.watchers, sessionID)
	}
}

// Close stops accepting messages and sessions and the janitor, ends turns
// still waiting for a slot, and waits for running turns; turns still running
// then are stopped (session.error, the session goes idle). With a deadline
// on ctx (the daemon's shutdown budget) the whole of Close fits inside it:
// harnesses get SIGTERM early enough that the grace before SIGKILL (at most
// kill_grace_period) and the output drain end by the deadline. Without a
// deadline it waits until ctx is done, then allows the full grace.
func (b *Backend) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		return nil
	}
	b.closing = true
	for _, as := range b.active {
		if !as.hasSlot {
			as.pending = nil
			if as.cancel != nil {
				as.cancel(errShutdownEarly)
			}
		}
	}
	b.mu.Unlock()

	b.stopJanitor()
	<-b.janitorDone

	finished := make(chan struct{})
	go func() {
		b.runners.Wait()
		close(finished)
	}()
	// Without a deadline the stop comes only from ctx; a nil channel never fires.
	var stopAt <-chan time.Time
	if deadline, ok := ctx.Deadline(); ok {
		grace := min(b.cfg.KillGracePeriod, time.Until(deadline)/2)
		b.shutdown.set(deadline, grace)
		timer := time.NewTimer(time.Until(deadline) - grace)
		defer timer.Stop()
		stopAt = timer.C
	}
	select {
	case <-finished:
		b.stopRuns(nil)
		return nil
	case <-stopAt:
	case <-ctx.Done():
	}
	b.mu.Lock()
	left := len(b.active)
	for _, as := range b.active {
		as.pending = nil
	}
	b.mu.Unlock()
	b.stopRuns(errShutdown)
	<-finished
	if left == 0 {
		return nil
	}
	cause := ctx.Err()
	if cause == nil { // stopped early enough to end by the deadline
		cause = context.DeadlineExceeded
	}
	return fmt.Errorf("local session backend: stopped %d running turn(s): %w", left, cause)
}

func (b *Backend) runJanitor(ctx context.Context) {
	defer close(b.janitorDone)
	ticker := time.NewTicker(max(time.Minute, min(time.Hour, b.cfg.WorkspaceRetention, b.cfg.SessionRetention)))
	defer ticker.Stop()
	for {
		if n, err := b.PruneWorkspaces(b.cfg.Now()); err != nil {
			b.log.Warn("pruning workspaces", "error", err)
		} else if n > 0 {
			b.log.Info("pruned workspaces", "count", n)
		}
		if n, err := b.PruneSessions(b.cfg.Now()); err != nil {
			b.log.Warn("pruning sessions", "error", err)
		} else if n > 0 {
			b.log.Info("pruned sessions", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// activeSession returns the in-memory state of a session with a turn
// running or waiting.
func (b *Backend) activeSession(id string) (*activeSession, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	as, ok := b.active[id]
	return as, ok
}
