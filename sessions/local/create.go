package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"time"

	"github.com/sandbox0/sandbox0d/sessions"
)

// sessionRun is everything needed to run one session. It holds the
// decrypted repository tokens (until the workspace is ready) and the vault
// values, in memory only.
type sessionRun struct {
	id           string
	deploymentID string
	runID        string
	agent        Agent
	env          Environment
	vaultEnv     map[string]string
	mounts       []mount
	stdinEvents  [][]byte // the initial events as recorded, one JSON line each
	prompt       string   // text of the first user.message
	workspace    string

	ctx    context.Context
	cancel context.CancelCauseFunc
}

// mount is one resource to materialize at rel inside the workspace.
type mount struct {
	resource sessions.Resource
	rel      string
}

var errNotRunning = errors.New("the session is not running")

// CreateSession implements sessions.Backend. It returns once the session is
// stored and its harness is started or queued behind
// local.max_concurrent_sessions; it never waits for the harness. Unknown
// agents, environments, vaults and files are *sessions.RunError of the
// matching type.
func (b *Backend) CreateSession(_ context.Context, req sessions.CreateRequest) (string, error) {
	now := b.cfg.Now()
	run, rec, events, err := b.prepareRun(req, now)
	if err != nil {
		return "", err
	}
	if err := b.admit(run, rec, events, now); err != nil {
		return "", err
	}
	b.log.Info("session created", "session_id", run.id, "deployment_id", req.DeploymentID,
		"run_id", req.RunID, "agent_id", run.agent.ID, "agent_version", run.agent.Version,
		"status", rec.Status)
	return run.id, nil
}

func runError(t sessions.ErrorType, format string, args ...any) *sessions.RunError {
	return &sessions.RunError{Type: t, Message: fmt.Sprintf(format, args...)}
}

// prepareRun checks a request against the configuration and builds the
// session's record, first events and run.
func (b *Backend) prepareRun(req sessions.CreateRequest, now time.Time) (*sessionRun, *sessionRecord, [][]byte, error) {
	agent, ok := b.agent(req.Agent.ID, req.Agent.Version)
	if !ok {
		return nil, nil, nil, runError(sessions.ErrAgentArchived,
			"agent %q version %d is no longer configured on this machine (local.agents)", req.Agent.ID, req.Agent.Version)
	}
	env, ok := b.envs[req.EnvironmentID]
	if !ok {
		return nil, nil, nil, runError(sessions.ErrEnvironmentNotFound,
			"environment %q is not configured on this machine (local.environments)", req.EnvironmentID)
	}
	vaultEnv := map[string]string{}
	for i, id := range req.VaultIDs {
		v, ok := b.vaults[id]
		if !ok {
			return nil, nil, nil, runError(sessions.ErrVaultNotFound,
				"vault_ids[%d]: vault %q is not configured on this machine (local.vaults)", i, id)
		}
		vars, err := readVault(v, b.cfg.CredentialsDir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, nil, runError(sessions.ErrVaultNotFound, "vault_ids[%d]: %v", i, err)
		} else if err != nil {
			return nil, nil, nil, runError(sessions.ErrUnknown, "vault_ids[%d]: %v", i, err)
		}
		maps.Copy(vaultEnv, vars)
	}

	id := newID(sessionIDPrefix)
	workspace := filepath.Join(b.cfg.WorkspaceDir, id)
	mounts, resources, err := b.planResources(req.Resources, workspace, now)
	if err != nil {
		return nil, nil, nil, err
	}

	var events, stdinEvents [][]byte
	prompt, sawUserMessage := "", false
	for i, raw := range req.InitialEvents {
		ev, eventType, err := initialEvent(raw, now)
		if err != nil {
			return nil, nil, nil, runError(sessions.ErrSessionCreationRejected, "initial_events[%d] %v", i, err)
		}
		if eventType == eventUserMessage && !sawUserMessage {
			prompt, sawUserMessage = messageText(ev), true
		}
		events = append(events, ev)
		stdinEvents = append(stdinEvents, ev)
	}

	rec := &sessionRecord{
		ID:            id,
		DeploymentID:  req.DeploymentID,
		RunID:         req.RunID,
		Agent:         sessions.AgentRef{ID: agent.ID, Version: agent.Version},
		EnvironmentID: env.ID,
		VaultIDs:      slices.Clone(req.VaultIDs),
		Metadata:      maps.Clone(req.Metadata),
		Resources:     resources,
		CreatedAt:     now,
		UpdatedAt:     now,
		Workspace:     workspace,
	}
	run := &sessionRun{
		id:           id,
		deploymentID: req.DeploymentID,
		runID:        req.RunID,
		agent:        agent,
		env:          env,
		vaultEnv:     vaultEnv,
		mounts:       mounts,
		stdinEvents:  stdinEvents,
		prompt:       prompt,
		workspace:    workspace,
	}
	return run, rec, events, nil
}

// planResources validates resources and decides where each one goes.
func (b *Backend) planResources(in []sessions.Resource, workspace string, now time.Time) ([]mount, []resourceRecord, error) {
	var mounts []mount
	var records []resourceRecord
	taken := map[string]int{}
	for i, res := range in {
		var rel string
		var err error
		switch res.Type {
		case "github_repository":
			if err := checkRepository(res); err != nil {
				return nil, nil, runError(sessions.ErrSessionCreationRejected, "resources[%d]: %v", i, err)
			}
			fallback := ""
			if res.MountPath == "" {
				if fallback, err = repositoryName(res.URL); err != nil {
					return nil, nil, runError(sessions.ErrSessionCreationRejected, "resources[%d]: %v", i, err)
				}
			}
			rel, err = resolveMountPath(res.MountPath, fallback)
		case "file":
			if err := checkFileID(b.cfg.FilesDir, res.FileID); err != nil {
				return nil, nil, runError(sessions.ErrFileNotFound, "resources[%d]: file %q: %v", i, res.FileID, err)
			}
			rel, err = resolveMountPath(res.MountPath, defaultFileMount(res.FileID))
		case "memory_store":
			return nil, nil, runError(sessions.ErrSelfHostedResourcesUnsupport,
				"resources[%d]: memory_store resources are not supported by the local session backend", i)
		default:
			return nil, nil, runError(sessions.ErrSessionCreationRejected, "resources[%d]: unknown resource type %q", i, res.Type)
		}
		if err != nil {
			return nil, nil, runError(sessions.ErrSessionCreationRejected, "resources[%d]: %v", i, err)
		}
		if j, dup := taken[rel]; dup {
			return nil, nil, runError(sessions.ErrSessionCreationRejected,
				"resources[%d]: mount path %q is already used by resources[%d]", i, rel, j)
		}
		taken[rel] = i
		mounts = append(mounts, mount{resource: res, rel: rel})
		records = append(records, resourceRecord{
			ID:        newID(resourceIDPrefix),
			Type:      res.Type,
			URL:       res.URL,
			Checkout:  res.Checkout,
			FileID:    res.FileID,
			MountPath: filepath.Join(workspace, rel),
			CreatedAt: now,
		})
	}
	return mounts, records, nil
}

// admit stores the session and starts it, or queues it when every slot is
// taken. The lock is held across the store write so that a slot freed
// meanwhile cannot skip a session that is about to be queued.
func (b *Backend) admit(run *sessionRun, rec *sessionRecord, events [][]byte, now time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return runError(sessions.ErrSessionCreationRejected, "the local session backend is shutting down")
	}
	startNow := b.running < b.cfg.MaxConcurrentSessions
	if startNow {
		rec.Status, rec.StartedAt = statusRunning, &now
		events = append(events, statusEvent(eventStatusRunning, now))
	} else {
		rec.Status = statusRescheduling
		events = append(events, statusEvent(eventStatusRescheduled, now))
	}
	if err := b.store.create(rec, events); err != nil {
		return runError(sessions.ErrUnknown, "storing the session: %v", err)
	}
	run.ctx, run.cancel = context.WithCancelCause(b.runCtx)
	b.live[run.id] = &liveSession{run: run, changed: make(chan struct{}), done: make(chan struct{})}
	if startNow {
		b.running++
		b.launch(run, false)
	} else {
		b.queue = append(b.queue, run)
	}
	return nil
}

// launch starts a session's runner. Callers hold b.mu.
func (b *Backend) launch(run *sessionRun, fromQueue bool) {
	b.runners.Add(1)
	go func() {
		defer b.runners.Done()
		b.finishRun(run, b.execute(run, fromQueue))
	}()
}

// sessionEnded forgets a finished session, wakes its followers, and hands
// its slot to the oldest queued session.
func (b *Backend) sessionEnded(run *sessionRun, heldSlot bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ls, ok := b.live[run.id]; ok {
		delete(b.live, run.id)
		close(ls.changed)
		close(ls.done)
	}
	run.cancel(nil)
	if !heldSlot {
		return
	}
	if !b.closing && len(b.queue) > 0 {
		next := b.queue[0]
		b.queue = slices.Delete(b.queue, 0, 1)
		b.launch(next, true)
		return
	}
	b.running--
}

// dequeue removes a session from the queue, reporting whether it was there.
func (b *Backend) dequeue(run *sessionRun) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := slices.Index(b.queue, run)
	if i < 0 {
		return false
	}
	b.queue = slices.Delete(b.queue, i, i+1)
	return true
}

// finishQueued ends a session that never got a slot.
func (b *Backend) finishQueued(run *sessionRun, failure *sessionFailure) {
	b.recordEnd(run, outcome{status: statusTerminated, failure: failure})
	b.sessionEnded(run, false)
}

// interrupt records a user.interrupt and stops the session: a queued
// session ends at once; a running harness's process group is terminated and
// the session ends when it is gone.
func (b *Backend) interrupt(sessionID string) ([]byte, error) {
	b.mu.Lock()
	ls, ok := b.live[sessionID]
	b.mu.Unlock()
	if !ok {
		return nil, errNotRunning
	}
	now := b.cfg.Now()
	ev := newEvent(eventUserInterrupt, now, map[string]any{"session_thread_id": nil})
	if _, err := b.store.appendEvents(sessionID, [][]byte{ev}, func(rec *sessionRecord) error {
		if isFinished(rec.Status) {
			return errNotRunning
		}
		rec.UpdatedAt = now
		return nil
	}); err != nil {
		return nil, err
	}
	b.notify(sessionID)
	ls.run.cancel(errInterrupted)
	if b.dequeue(ls.run) {
		b.finishQueued(ls.run, nil)
	}
	b.log.Info("session interrupted", "session_id", sessionID)
	return ev, nil
}
