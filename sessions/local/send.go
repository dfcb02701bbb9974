package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/sandbox0/sandbox0d/sessions"
)

var (
	errArchived     = errors.New("the session is archived")
	errClosing      = errors.New("the local session backend is shutting down")
	errAgentMissing = errors.New("the session's agent is no longer configured")
)

// inputEvent is one event sent to a session, validated and stamped.
type inputEvent struct {
	json      []byte
	interrupt bool
}

// sendEvents records events sent to a session in one transaction and acts
// on them in order: user.message and system.message are the input of the
// next turn (starting one when the session is idle, queued behind the
// running one otherwise); user.interrupt stops the running turn and drops
// input still queued before it. It returns the recorded events.
func (b *Backend) sendEvents(id string, events []inputEvent) ([]json.RawMessage, error) {
	rec, err := b.store.get(id)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return nil, errClosing
	}
	as := b.active[id]
	if (as != nil && as.deleted) || b.pruning[id] {
		return nil, errSessionNotFound
	}
	var input []json.RawMessage
	interrupted := false
	recorded := make([][]byte, 0, len(events)+1)
	for _, ev := range events {
		recorded = append(recorded, ev.json)
		if ev.interrupt {
			interrupted, input = true, nil
			continue
		}
		input = append(input, ev.json)
	}
	if len(input) > 0 && atBudget(rec) {
		// Nothing it is sent can run; an interrupt alone still can.
		return nil, &budgetReachedError{msg: budgetError(rec)}
	}
	echo := make([]json.RawMessage, len(recorded))
	for i, ev := range recorded {
		echo[i] = ev
	}

	if as != nil || len(input) == 0 {
		// A turn is running or waiting (the input queues behind it), or there
		// is nothing to run: record the events only.
		now := b.cfg.Now()
		if _, err := b.store.appendEvents(id, recorded, func(rec *sessionRecord) error {
			if err := checkSendable(rec); err != nil {
				return err
			}
			rec.UpdatedAt = now
			return nil
		}); err != nil {
			return nil, err
		}
		b.notifyLocked(id)
		if as != nil {
			if interrupted {
				as.pending = nil
				if as.cancel != nil {
					as.cancel(errInterrupted)
				} else {
					as.interrupted = true
				}
			}
			as.pending = append(as.pending, input...)
		}
		return echo, nil
	}

	// An idle session starts a turn: running (or rescheduling) in the same
	// transaction that records the message, so a client reading the session
	// right after the send never sees it idle.
	run, err := b.runFromRecord(rec)
	if err != nil {
		return nil, err
	}
	now := b.cfg.Now()
	as = &activeSession{run: run, pending: input, done: make(chan struct{})}
	status, statusEv := statusRescheduling, eventStatusRescheduled
	if b.trySlotLocked() {
		as.hasSlot = true
		status, statusEv = statusRunning, eventStatusRunning
	} else {
		as.waiter = b.enqueueLocked()
	}
	recorded = append(recorded, statusEvent(statusEv, now))
	if _, err := b.setStatus(id, status, recorded, checkSendable); err != nil {
		b.giveBackLocked(as)
		return nil, err
	}
	b.notifyLocked(id)
	as.status = status
	b.active[id] = as
	b.startRunner(id, as)
	return echo, nil
}

func checkSendable(rec *sessionRecord) error {
	switch {
	case rec.Status == statusTerminated:
		return errTerminated
	case rec.ArchivedAt != nil:
		return errArchived
	}
	return nil
}

// runFromRecord rebuilds what running turns of a stored session needs.
func (b *Backend) runFromRecord(rec *sessionRecord) (*sessionRun, error) {
	agent, ok := b.agent(rec.Agent.ID, rec.Agent.Version)
	if !ok {
		return nil, fmt.Errorf("%w: agent %q version %d (local.agents)", errAgentMissing, rec.Agent.ID, rec.Agent.Version)
	}
	env, ok := b.environment(rec.EnvironmentID)
	if !ok {
		return nil, fmt.Errorf("%w: environment %q (local.environments, or created through the API)", errAgentMissing, rec.EnvironmentID)
	}
	run := &sessionRun{id: rec.ID, deploymentID: rec.DeploymentID, runID: rec.RunID, agent: agent, env: env,
		vaultIDs: rec.VaultIDs, workspace: rec.Workspace}
	if _, err := os.Stat(rec.Workspace); err != nil {
		// Pruned by workspace retention, or never made: start afresh.
		run.prepare = true
	}
	return run, nil
}

// deleteSession stops a session's turn if one runs, then removes its
// workspace, record and events; followers of its stream get session.deleted.
func (b *Backend) deleteSession(id string) error { return b.removeSession(id, b.store) }

// removeSession is deleteSession writing through st: a copy of b.store
// without webhook events when the delete was already reported elsewhere
// (a tombstone, index_tombstone.go).
func (b *Backend) removeSession(id string, st sessionStore) error {
	b.mu.Lock()
	// Sends answer 404 from now on, so none can start a turn between the
	// runner's exit and the delete.
	b.pruning[id] = true
	defer func() {
		b.mu.Lock()
		delete(b.pruning, id)
		b.mu.Unlock()
	}()
	as := b.active[id]
	if as != nil {
		as.deleted, as.pending = true, nil
		if as.cancel != nil {
			as.cancel(errDeleted)
		}
	}
	b.mu.Unlock()
	if as != nil {
		<-as.done
	}
	rec, err := b.store.get(id)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(rec.Workspace); err != nil {
		return fmt.Errorf("removing the workspace: %w", err)
	}
	if err := st.deleteSession(id, b.cfg.Now()); err != nil {
		return err
	}
	b.notify(id)
	return nil
}

// interrupt sends one user.interrupt, as POST …/events does.
func (b *Backend) interrupt(id string) (json.RawMessage, error) {
	ev := newEvent(eventUserInterrupt, b.cfg.Now(), map[string]any{"session_thread_id": nil})
	echo, err := b.sendEvents(id, []inputEvent{{json: ev, interrupt: true}})
	if err != nil {
		return nil, err
	}
	return echo[0], nil
}

// SessionOfRun implements sessions.RunSessionFinder: a deployment's sessions
// are indexed by deployment, so this reads only that deployment's records.
func (b *Backend) SessionOfRun(_ context.Context, run sessions.RunRef) (string, error) {
	recs, err := b.store.sessionsOfDeployment(run.DeploymentID)
	if err != nil {
		return "", err
	}
	for _, rec := range recs {
		if rec.RunID == run.RunID {
			return rec.ID, nil
		}
	}
	return "", nil
}

var _ sessions.RunSessionFinder = (*Backend)(nil)
