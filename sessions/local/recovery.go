package local

import "fmt"

// recoverAfterRestart ends the sessions a previous process left queued or
// running: nothing of theirs survives in memory to continue them.
func (b *Backend) recoverAfterRestart() error {
	stale, err := b.store.sessionsWhere(func(rec *sessionRecord) bool { return !isFinished(rec.Status) })
	if err != nil {
		return fmt.Errorf("finding sessions left running: %w", err)
	}
	for _, rec := range stale {
		killed := killLeftover(rec.Process, b.bootID)
		msg := "the daemon restarted while the session was running; it was terminated"
		if rec.Status == statusRescheduling {
			msg = "the daemon restarted while the session was waiting for a slot; it was terminated"
		}
		now := b.cfg.Now()
		events := [][]byte{errorEvent(failuref("%s", msg), now), statusEvent(eventStatusTerminated, now)}
		if _, err := b.store.appendEvents(rec.ID, events, func(r *sessionRecord) error {
			r.Status, r.UpdatedAt, r.EndedAt, r.Process = statusTerminated, now, &now, nil
			return nil
		}); err != nil {
			return fmt.Errorf("session %s: marking it terminated after a restart: %w", rec.ID, err)
		}
		b.log.Warn("session terminated by a daemon restart", "session_id", rec.ID,
			"previous_status", rec.Status, "leftover_harness_killed", killed)
	}
	return nil
}
