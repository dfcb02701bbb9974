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
	errInterrupted  = errors.New("interrupted by a user.interrupt event")
	errTimedOut     = errors.New("session timed out")
	errOutputCapped = errors.New("harness output exceeded the environment's max_output_bytes")
	errShutdown     = errors.New("the daemon shut down while the session was running")
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
	baseEnv map[string]string // the daemon's environment at start, for passthrough
	sandbox sandbox.Sandbox   // starts every harness process
	bootID  string

	// runCtx parents every session; Close cancels it once its deadline has
	// passed with harnesses still running.
	runCtx   context.Context
	stopRuns context.CancelCauseFunc
	runners  sync.WaitGroup

	mu      sync.Mutex
	closing bool
	// shutdown bounds the harness grace periods once Close has a deadline.
	shutdown shutdownBudget
	live     map[string]*liveSession // sessions queued or running
	running  int                     // sessions holding one of the slots
	queue    []*sessionRun           // waiting for a slot, oldest first

	stopJanitor context.CancelFunc
	janitorDone chan struct{}
}

// liveSession is the in-memory side of a session that has not finished.
type liveSession struct {
	run *sessionRun
	// changed is closed (and replaced) whenever events are appended, so
	// stream followers wake up and read the new events from bbolt.
	changed chan struct{}
	done    chan struct{} // closed when the session has finished
}

var (
	_ sessions.Backend       = (*Backend)(nil)
	_ sessions.SessionRouter = (*Backend)(nil)
)

// New opens the local backend on the daemon's bbolt file. Sessions a
// previous daemon process left queued or running are marked terminated with
// a session.error saying the daemon restarted, and their harnesses, if still
// alive, are killed.
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

	b := &Backend{
		cfg:     cfg,
		log:     cfg.Logger.With("backend", "local"),
		store:   sessionStore{ns: ns},
		cursors: ns.Cursors(),
		agents:  map[string][]Agent{},
		envs:    map[string]Environment{},
		vaults:  map[string]Vault{},
		baseEnv: environMap(os.Environ()),
		sandbox: cfg.Sandbox,
		bootID:  currentBootID(),
		live:    map[string]*liveSession{},
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
	for _, v := range cfg.Vaults {
		b.vaults[v.ID] = v
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

// CheckReferences implements sessions.Backend.
func (b *Backend) CheckReferences(_ context.Context, refs sessions.References) error {
	if _, ok := b.agent(refs.Agent.ID, refs.Agent.Version); !ok {
		return b.agentNotFound(refs.Agent.ID, refs.Agent.Version)
	}
	if _, ok := b.envs[refs.EnvironmentID]; !ok {
		return &sessions.NotFoundError{Field: "environment_id", ID: refs.EnvironmentID}
	}
	for i, id := range refs.VaultIDs {
		if _, ok := b.vaults[id]; !ok {
			return &sessions.NotFoundError{Field: fmt.Sprintf("vault_ids[%d]", i), ID: id}
		}
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

// agent finds a configured agent; version 0 means the latest.
func (b *Backend) agent(id string, version int64) (Agent, bool) {
	versions := b.agents[id]
	if len(versions) == 0 {
		return Agent{}, false
	}
	if version == 0 {
		return versions[len(versions)-1], true
	}
	for _, a := range versions {
		if a.Version == version {
			return a, true
		}
	}
	return Agent{}, false
}

// Done returns a channel closed once the session has finished (idle or
// terminated). For a finished or unknown session it is already closed.
func (b *Backend) Done(sessionID string) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ls, ok := b.live[sessionID]; ok {
		return ls.done
	}
	closed := make(chan struct{})
	close(closed)
	return closed
}

// StderrTail returns the last bytes (at most 64 KiB) a finished session's
// harness wrote to stderr.
func (b *Backend) StderrTail(sessionID string) ([]byte, error) {
	out, err := b.store.stderr(sessionID)
	if errors.Is(err, errSessionNotFound) {
		return nil, fmt.Errorf("session %s: %w", sessionID, err)
	}
	return out, err
}

// watch returns the channel that will be closed at the session's next
// change, and whether the session is still live. Take it before reading
// events so no append can be missed.
func (b *Backend) watch(sessionID string) (<-chan struct{}, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ls, ok := b.live[sessionID]
	if !ok {
		return nil, false
	}
	return ls.changed, true
}

// notify wakes the followers of a session after its events changed.
func (b *Backend) notify(sessionID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ls, ok := b.live[sessionID]; ok {
		close(ls.changed)
		ls.changed = make(chan struct{})
	}
}

// Close stops accepting sessions and the janitor, terminates queued
// sessions, and waits for running harnesses; harnesses still running then
// are terminated (session.error, terminated). With a deadline on ctx (the
// daemon's shutdown budget) the whole of Close fits inside it: harnesses
// get SIGTERM early enough that the grace before SIGKILL (at most
// kill_grace_period) and the output drain end by the deadline. Without a
// deadline it waits until ctx is done, then allows the full grace.
func (b *Backend) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		return nil
	}
	b.closing = true
	queued := b.queue
	b.queue = nil
	b.mu.Unlock()

	b.stopJanitor()
	<-b.janitorDone
	for _, run := range queued {
		b.finishQueued(run, failuref("the daemon shut down before the session started"))
	}

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
	left := b.running
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
	return fmt.Errorf("local session backend: terminated %d running session(s): %w", left, cause)
}

func (b *Backend) runJanitor(ctx context.Context) {
	defer close(b.janitorDone)
	ticker := time.NewTicker(max(time.Minute, min(time.Hour, b.cfg.WorkspaceRetention)))
	defer ticker.Stop()
	for {
		if n, err := b.PruneWorkspaces(b.cfg.Now()); err != nil {
			b.log.Warn("pruning workspaces", "err", err)
		} else if n > 0 {
			b.log.Info("pruned workspaces", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
