package local

import "fmt"

// recoverAfterRestart ends the turns a previous process left running or
// waiting: nothing of theirs survives in memory to continue them, so each
// gets a session.error saying so and the session goes idle, ready for the
// next message. A leftover harness is killed first.
func (b *Backend) recoverAfterRestart() error {
	stale, err := b.store.sessionsWhere(func(rec *sessionRecord) bool { return !isFinished(rec.Status) })
	if err != nil {
		return fmt.Errorf("finding sessions left running: %w", err)
	}
	for _, rec := range stale {
		killed := killLeftover(rec.Process, b.bootID)
		msg := fmt.Sprintf("the daemon restarted during turn %d; the turn was stopped and the session is idle", rec.Turns)
		if rec.Status == statusRescheduling {
			msg = "the daemon restarted while the turn was waiting for a slot; it did not run and the session is idle"
		}
		out := turnOutcome{status: statusIdle, failure: failuref("%s", msg), retry: retryStatusExhausted}
		if rec.Workspace != "" && rec.StartedAt == nil && len(rec.Resources) > 0 {
			// Its resources were never materialized; it cannot continue.
			out.status = statusTerminated
			out.failure = failuref("the daemon restarted before the session's resources were materialized; it was terminated")
			out.retry = retryStatusTerminal
		}
		// Issue 26: in a cluster the leader may have reported this turn's
		// end already (the node's lease expired and the session was marked
		// lost, with its webhook); the end is recorded here all the same,
		// without a second report. Nothing else runs yet: the store's
		// webhook sink can be set aside for this one write.
		quiet := b.lostReported(rec)
		sink := b.store.events
		if quiet {
			b.store.events = nil
		}
		err := b.recordTurnEnd(rec.ID, out, out.status)
		b.store.events = sink
		if err != nil {
			return fmt.Errorf("session %s: recording the turn a restart stopped: %w", rec.ID, err)
		}
		b.log.Warn("turn stopped by a daemon restart", "session_id", rec.ID,
			"previous_status", rec.Status, "leftover_harness_killed", killed, "reported_lost_by_the_cluster", quiet)
	}
	return nil
}
