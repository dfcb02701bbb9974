package local

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/sandbox0/sandbox0d/sessions/local/projection"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sandbox0/sandbox0d/internal/diskspace"
	"github.com/sandbox0/sandbox0d/sessions/local/harness"
	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
)

// activeSession is the in-memory side of a session that has a turn running,
// waiting for a slot, or input waiting for its next turn. Idle sessions with
// nothing to do have none: everything about them is in bbolt. Fields are
// guarded by Backend.mu unless noted.
type activeSession struct {
	run     *sessionRun
	pending []json.RawMessage // recorded input for the next turn, in order
	status  string            // the status last written by this session's runner or a send
	cancel  context.CancelCauseFunc
	hasSlot bool
	waiter  chan struct{} // closed when a slot is handed over; nil unless queued
	// interrupted is set by an interrupt that found no turn to cancel yet.
	interrupted bool
	deleted     bool
	done        chan struct{} // closed when the runner has exited
}

// turnOutcome is how a turn ended.
type turnOutcome struct {
	status     string          // statusIdle or statusTerminated
	stopReason string          // of an idle end; "" means end_turn
	failure    *sessionFailure // recorded as a session.error when set
	retry      string          // retry_status of that error
	stderr     []byte
}

// startRunner starts the goroutine that runs a session's turns until it has
// nothing left to do. Callers hold b.mu and have put as in b.active.
func (b *Backend) startRunner(id string, as *activeSession) {
	b.runners.Add(1)
	go func() {
		defer b.runners.Done()
		b.runSession(id, as)
	}()
}

// runSession runs turns while input is pending, then records the end (idle
// or terminated) and forgets the session. A session's status is written by
// this goroutine only while it is active, which keeps them in order.
func (b *Backend) runSession(id string, as *activeSession) {
	for {
		b.mu.Lock()
		input := as.pending
		as.pending = nil
		var early *turnOutcome
		switch {
		case as.interrupted:
			as.interrupted = false
			early = &turnOutcome{status: statusIdle}
		case b.closing && !as.hasSlot:
			early = &turnOutcome{status: statusIdle, failure: failuref("%v", errShutdownEarly), retry: retryStatusExhausted}
		case as.deleted || (len(input) == 0 && !as.run.prepare):
			// Nothing to run.
			early = &turnOutcome{status: statusIdle}
		}
		if early != nil {
			b.mu.Unlock()
			if b.finish(id, as, *early) {
				return
			}
			continue
		}
		ctx, cancel := context.WithCancelCause(b.runCtx)
		as.cancel = cancel
		b.mu.Unlock()

		out := b.runTurn(ctx, id, as, input)
		cancel(nil)
		b.mu.Lock()
		as.cancel = nil
		b.mu.Unlock()
		if b.finish(id, as, out) {
			return
		}
	}
}

// finish records the end of a turn. It returns true when the session is no
// longer active; false when queued input starts another turn (the session
// stays running, with no idle in between).
func (b *Backend) finish(id string, as *activeSession, out turnOutcome) bool {
	for attempt := 0; ; attempt++ {
		b.mu.Lock()
		if as.deleted {
			b.forget(id, as)
			b.mu.Unlock()
			return true
		}
		if out.status != statusTerminated && len(as.pending) > 0 && !b.closing {
			b.mu.Unlock()
			if err := b.recordTurnEnd(id, out, ""); err != nil {
				b.log.Error("recording the end of a turn", "session_id", id, "error", err)
			}
			b.notify(id)
			return false
		}
		// Written under b.mu: a message sent meanwhile either lands before
		// this (and is pending, above) or sees the session idle.
		err := b.recordTurnEnd(id, out, out.status)
		if err == nil {
			b.forget(id, as)
			b.mu.Unlock()
			return true
		}
		b.mu.Unlock()
		// A full disk must not leave the session running forever: retry
		// until the end lands, backing off to once every few seconds.
		b.log.Error("recording the end of a turn; retrying", "session_id", id, "attempt", attempt+1, "error", err)
		if b.endRetried != nil {
			b.endRetried <- err
		}
		select {
		case <-time.After(min(5*time.Second, time.Duration(attempt+1)*100*time.Millisecond)):
		case <-b.runCtx.Done():
			return true
		}
	}
}

// forget drops an active session and frees its slot. Callers hold b.mu.
func (b *Backend) forget(id string, as *activeSession) {
	if b.active[id] == as {
		delete(b.active, id)
	}
	if as.hasSlot {
		as.hasSlot = false
		b.releaseLocked()
	}
	if as.waiter != nil {
		if !b.abandonLocked(as.waiter) {
			b.releaseLocked()
		}
		as.waiter = nil
	}
	delete(b.rotated, id) // a token no clone took is not kept
	close(as.done)
	b.notifyLocked(id)
}

// runTurn waits for a slot, prepares the workspace the first time, and runs
// one turn of the agent's harness.
func (b *Backend) runTurn(ctx context.Context, id string, as *activeSession, input []json.RawMessage) turnOutcome {
	out := b.runTurnUnredacted(ctx, id, as, input)
	// What the harness wrote besides its events (stderr, the error it
	// ended with) is stored too: no credential's real value goes with it.
	if r := as.run.redact; r != nil {
		out.stderr = r(out.stderr)
		if out.failure != nil {
			f := *out.failure
			f.Message = string(r([]byte(f.Message)))
			out.failure = &f
		}
	}
	return out
}

func (b *Backend) runTurnUnredacted(ctx context.Context, id string, as *activeSession, input []json.RawMessage) turnOutcome {
	run := as.run
	if err := b.takeSlot(ctx, id, as); err != nil {
		return b.endedBy(ctx, err, run)
	}
	turnNo, err := b.startTurn(id, as, len(input) > 0)
	if err != nil {
		return turnOutcome{status: statusTerminated, failure: failuref("recording the turn start: %v", err)}
	}
	ctx, cancel := context.WithTimeoutCause(ctx, run.env.Timeout, errTimedOut)
	defer cancel()
	if run.prepare {
		if err := b.prepareWorkspace(ctx, run); err != nil {
			return b.endedBy(ctx, err, run)
		}
		run.prepare = false
	}
	// Files added since the last turn (resources.go).
	if err := b.materializePending(id, run.workspace); err != nil {
		return b.endedBy(ctx, err, run)
	}
	if len(input) == 0 {
		return turnOutcome{status: statusIdle}
	}
	creds, err := b.sessionCredentials(run.vaultIDs)
	if err != nil {
		return turnOutcome{status: statusTerminated, failure: failuref("%v", err)}
	}
	if run.creds == nil {
		run.creds = projection.NewSession()
	}
	// The harness gets placeholders (real values only for a vault that
	// opted out); the proxy knows the real ones for this turn only.
	vaultEnv := run.creds.Refresh(creds)
	run.redact = run.creds.Redactor()
	projecting := run.creds.Projects()
	if projecting {
		if err := b.checkProjection(); err != nil {
			return turnOutcome{status: statusTerminated, failure: failuref("a vault of this session (vault_ids %v): %v", run.vaultIDs, err)}
		}
		defer b.cfg.Projector.Project(id, run.creds)()
	}
	prompt := ""
	for _, ev := range input {
		if eventType(ev) == eventUserMessage {
			prompt = messageText(ev)
			break
		}
	}
	rec, err := b.store.get(id)
	if err != nil {
		return turnOutcome{status: statusTerminated, failure: failuref("reading the session: %v", err)}
	}
	h, sb := b.turnHarness(run, rec)
	if projecting {
		b.projectTurn(&sb.spec, vaultEnv, creds)
	}
	turn := harness.Turn{
		SessionID:       id,
		Number:          turnNo,
		Events:          input,
		Prompt:          prompt,
		Workspace:       run.workspace,
		Env:             b.harnessEnv(run, vaultEnv, turnNo, prompt),
		Sandbox:         sb,
		KillGracePeriod: b.cfg.KillGracePeriod,
		GraceBound: func(grace time.Duration, drain bool) time.Duration {
			if drain {
				return b.shutdown.bound(grace, drainStage)
			}
			return b.shutdown.bound(grace, killStage)
		},
	}
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	sink := b.newTurnSink(id, run.env, stop, run.redact)
	watched := b.watchWorkspace(ctx, run, stop)
	res, runErr := h.RunTurn(ctx, turn, sink)
	sink.close()
	// The workspace as the turn left it counts too (a harness may write
	// its last gigabytes and exit between two polls).
	if err := watched(); err != nil && context.Cause(ctx) == nil {
		stop(err)
	}
	if e := sb.procs.limitExceeded(); e != nil {
		// The sandbox ended the turn's processes; whatever the harness
		// made of that, the limit is why.
		return turnOutcome{status: statusTerminated, failure: limitFailure(e, run.env), stderr: res.Stderr}
	}
	if err := sink.failure(); err != nil && context.Cause(ctx) == nil {
		runErr = err
	}
	if context.Cause(ctx) != nil {
		out := b.endedBy(ctx, nil, run)
		out.stderr = res.Stderr
		return out
	}
	if runErr != nil {
		return turnOutcome{status: statusTerminated, failure: failuref("%v", runErr), stderr: res.Stderr}
	}
	if res.StopReason == "" || res.StopReason == stopReasonEndTurn {
		// A turn that spent the rest of the budget ends the session's work
		// (whatever harness reported the spend).
		if rec, err := b.store.get(id); err == nil && atBudget(rec) {
			res.StopReason = stopReasonBudgetReached
		}
	}
	return turnOutcome{status: statusIdle, stopReason: res.StopReason, stderr: res.Stderr}
}

// takeSlot waits for one of local.max_concurrent_sessions slots, first come
// first served; a session that has to wait says so with a
// session.status_rescheduled event.
func (b *Backend) takeSlot(ctx context.Context, id string, as *activeSession) error {
	b.mu.Lock()
	if as.hasSlot {
		b.mu.Unlock()
		return nil
	}
	if as.waiter == nil {
		if b.trySlotLocked() {
			as.hasSlot = true
			b.mu.Unlock()
			return nil
		}
		as.waiter = b.enqueueLocked()
	}
	waiter := as.waiter
	b.mu.Unlock()
	if as.status != statusRescheduling {
		now := b.cfg.Now()
		if _, err := b.setStatus(id, statusRescheduling, [][]byte{statusEvent(eventStatusRescheduled, now)}, nil); err != nil {
			return failuref("recording the wait for a slot: %v", err)
		}
		b.notify(id)
		as.status = statusRescheduling
	}
	var cause error
	select {
	case <-waiter:
	case <-ctx.Done():
		cause = context.Cause(ctx)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	as.waiter = nil
	if cause == nil || !b.abandonLocked(waiter) {
		as.hasSlot = true // granted, possibly just as ctx was canceled
	}
	return cause
}

// trySlotLocked takes a free slot unless sessions are waiting for one.
func (b *Backend) trySlotLocked() bool {
	if b.running < b.cfg.MaxConcurrentSessions && len(b.waiting) == 0 {
		b.running++
		return true
	}
	return false
}

func (b *Backend) enqueueLocked() chan struct{} {
	ch := make(chan struct{})
	b.waiting = append(b.waiting, ch)
	return ch
}

// releaseLocked hands a freed slot to the oldest waiter.
func (b *Backend) releaseLocked() {
	if len(b.waiting) > 0 {
		close(b.waiting[0])
		b.waiting = slices.Delete(b.waiting, 0, 1)
		return
	}
	b.running--
}

// abandonLocked leaves the queue; false when the slot was already granted.
func (b *Backend) abandonLocked(ch chan struct{}) bool {
	i := slices.Index(b.waiting, ch)
	if i < 0 {
		return false
	}
	b.waiting = slices.Delete(b.waiting, i, i+1)
	return true
}

// startTurn records that a turn begins (running, with a status event when
// the session was not running already) and returns its number.
func (b *Backend) startTurn(id string, as *activeSession, counts bool) (int, error) {
	now := b.cfg.Now()
	var events [][]byte
	if as.status != statusRunning {
		events = append(events, statusEvent(eventStatusRunning, now))
	}
	rec, err := b.setStatus(id, statusRunning, events, func(rec *sessionRecord) error {
		if counts {
			rec.Turns++
		}
		if rec.StartedAt == nil {
			rec.StartedAt = &now
		}
		rec.TurnStartedAt = &now
		return nil
	})
	if err != nil {
		return 0, err
	}
	b.notify(id)
	as.status = statusRunning
	return rec.Turns, nil
}

// recordTurnEnd writes a turn's end: its session.error if any, its active
// time, and when status is set the status change (idle or terminated).
func (b *Backend) recordTurnEnd(id string, out turnOutcome, status string) error {
	now := b.cfg.Now()
	var events [][]byte
	if out.failure != nil {
		retry := out.retry
		if retry == "" {
			retry = retryStatusTerminal
		}
		events = append(events, errorEvent(out.failure, retry, now))
	}
	switch status {
	case statusIdle:
		events = append(events, idleEvent(out.stopReason, now))
	case statusTerminated:
		events = append(events, statusEvent(eventStatusTerminated, now))
	}
	update := func(rec *sessionRecord) error {
		if rec.TurnStartedAt != nil {
			rec.ActiveNanos += int64(now.Sub(*rec.TurnStartedAt))
			rec.TurnStartedAt = nil
		}
		rec.Process, rec.TurnEndedAt = nil, &now
		if status == statusTerminated {
			rec.EndedAt = &now
		}
		return nil
	}
	var err error
	if status == "" {
		_, err = b.store.appendEvents(id, events, func(rec *sessionRecord) error {
			rec.UpdatedAt = now
			return update(rec)
		})
	} else {
		_, err = b.setStatus(id, status, events, update)
	}
	if errors.Is(err, errSessionNotFound) {
		return nil // deleted under us: nothing left to record
	}
	if err != nil {
		return err
	}
	if len(out.stderr) > 0 {
		if err := b.store.putStderr(id, out.stderr); err != nil {
			b.log.Warn("storing harness stderr", "session_id", id, "error", err)
		}
	}
	attrs := []any{"session_id", id}
	if status != "" {
		attrs = append(attrs, "status", status)
	}
	if out.failure != nil {
		attrs = append(attrs, "error_type", out.failure.Type, "error", out.failure.Message)
	}
	b.log.Info("turn finished", attrs...)
	return nil
}

// setStatus is the one place a session's status changes after its creation:
// the events and the new status are written in one transaction, with update
// applied to the record. Hooks that must see every transition (webhooks)
// belong here. It only writes: callers wake followers (some hold b.mu).
func (b *Backend) setStatus(id, status string, events [][]byte, update func(*sessionRecord) error) (*sessionRecord, error) {
	now := b.cfg.Now()
	rec, err := b.store.appendEvents(id, events, func(rec *sessionRecord) error {
		if rec.Status == statusTerminated && status != statusTerminated {
			return errTerminated
		}
		rec.Status, rec.UpdatedAt = status, now
		if update != nil {
			return update(rec)
		}
		return nil
	})
	return rec, err
}

// endedBy turns the reason a turn stopped early into its outcome. A canceled
// context says why better than the error it caused.
func (b *Backend) endedBy(ctx context.Context, err error, run *sessionRun) turnOutcome {
	out := turnOutcome{status: statusTerminated}
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, errInterrupted):
		// The user took control back: idle, not an error.
		out.status = statusIdle
	case errors.Is(cause, errDeleted):
	case errors.Is(cause, errTimedOut):
		out.failure = failuref("the turn exceeded its timeout of %s (environment %s)", run.env.Timeout, run.env.ID)
	case errors.Is(cause, errOutputCapped):
		out.failure = failuref("the turn stored more than %d bytes of events (max_output_bytes of environment %s)",
			run.env.MaxOutputBytes, run.env.ID)
	case errors.Is(cause, errTooManyEvents):
		out.failure = failuref("the turn emitted more than %d events (max_events of environment %s)",
			run.env.MaxEvents, run.env.ID)
	case errors.As(cause, new(*workspaceFullError)):
		out.failure = failuref("%v", cause)
	case errors.As(cause, new(*diskspace.LowError)):
		// Not necessarily this session's doing: the turn is lost, the
		// session waits for the next message, sent once there is room.
		out.status, out.retry = statusIdle, retryStatusExhausted
		out.failure = failuref("%v; the turn was stopped because it writes (output or workspace), and the session is idle: send the message again once there is space", cause)
	case errors.Is(cause, errShutdown), errors.Is(cause, errShutdownEarly):
		// The daemon stopping is not the session's fault: the turn is lost,
		// the session waits for the next message.
		out.status, out.retry = statusIdle, retryStatusExhausted
		out.failure = failuref("%v", cause)
	case cause != nil:
		out.failure = failuref("%v", cause)
	default:
		var f *sessionFailure
		if errors.As(err, &f) {
			out.failure = f
		} else if err != nil {
			out.failure = failuref("%v", err)
		}
	}
	return out
}

// sandboxFor is where every process of a session's turns is created: the
// configured sandbox, with the workspace the only writable path and HOME
// inside it.
func (b *Backend) sandboxFor(run *sessionRun) turnSandbox {
	network := run.env.sandboxNetwork()
	// An API agent's MCP servers, reachable when the environment allows them.
	network.MCPServerHosts = run.agent.mcpHosts
	return turnSandbox{sb: b.sandbox, procs: &turnProcesses{}, spec: sandbox.Spec{
		SessionID: run.id,
		Dir:       run.workspace,
		Workspace: run.workspace,
		Home:      filepath.Join(run.workspace, harnessHomeDir),
		Network:   network,
		Limits:    run.env.sandboxLimits(),
	}}
}

// harnessHomeDir is HOME inside a sandbox, relative to the workspace.
const harnessHomeDir = ".home"

// turnSandbox adapts the backend's sandbox to the harness seam.
type turnSandbox struct {
	sb    sandbox.Sandbox
	spec  sandbox.Spec
	procs *turnProcesses // every process of the turn, for the limit checks
}

func (s turnSandbox) Command(argv, env []string) (*sandbox.Process, error) {
	spec := s.spec
	spec.Argv, spec.Env = argv, env
	p, err := s.sb.Command(spec)
	if err == nil {
		s.procs.add(p)
	}
	return p, err
}

// harnessEnv builds the environment of a turn. Later sources win:
// passthrough from the daemon, agent env, environment env, vault values,
// then the SANDBOX0D_* variables that describe the session and turn.
func (b *Backend) harnessEnv(run *sessionRun, vaultEnv map[string]string, turn int, prompt string) []string {
	vars := map[string]string{}
	for _, k := range harnessPassthroughEnv {
		if v, ok := b.baseEnv[k]; ok {
			vars[k] = v
		}
	}
	maps.Copy(vars, run.agent.Env)
	maps.Copy(vars, run.env.Env)
	maps.Copy(vars, vaultEnv)
	if len(prompt) > maxPromptEnvBytes {
		// The kernel refuses larger single variables; stdin has the full text.
		prompt = strings.ToValidUTF8(prompt[:maxPromptEnvBytes], "")
	}
	maps.Copy(vars, map[string]string{
		"SANDBOX0D_SESSION_ID":     run.id,
		"SANDBOX0D_TURN":           strconv.Itoa(turn),
		"SANDBOX0D_DEPLOYMENT_ID":  run.deploymentID,
		"SANDBOX0D_RUN_ID":         run.runID,
		"SANDBOX0D_AGENT_ID":       run.agent.ID,
		"SANDBOX0D_AGENT_VERSION":  strconv.FormatInt(run.agent.Version, 10),
		"SANDBOX0D_ENVIRONMENT_ID": run.env.ID,
		"SANDBOX0D_WORKSPACE":      run.workspace,
		"SANDBOX0D_PROMPT":         prompt,
		"PWD":                      run.workspace,
	})
	return envList(vars)
}

func eventType(ev []byte) string {
	var head struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(ev, &head)
	return head.Type
}

var errTerminated = errors.New("the session is terminated")
