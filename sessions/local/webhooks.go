package local

import (
	"time"

	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks/event"
)

// EventSink is told about the webhook events local sessions commit (the
// daemon's webhook dispatcher). Every event is appended inside the write
// transaction of the change it reports, so it exists exactly when the change
// committed; Notify comes after the commit.
type EventSink interface {
	// Enabled reports whether any endpoint wants events; when none does,
	// nothing is appended.
	Enabled() bool
	Notify()
}

// transitionEvents names the webhook events a change of a session record
// reports: its status moving (rescheduling, running, idle, terminated), the idle that
// leaves it at its budget cap, and its archiving.
// A write that changes neither (events appended during a turn) reports
// nothing.
func transitionEvents(beforeStatus string, wasArchived bool, after *sessionRecord) []string {
	var out []string
	if after.Status != beforeStatus {
		switch after.Status {
		case statusRescheduling:
			out = append(out, event.SessionStatusRescheduled)
		case statusRunning:
			out = append(out, event.SessionStatusRunStarted)
		case statusIdle:
			out = append(out, event.SessionStatusIdled)
			// The turn that spent the rest of the budget is the one that
			// idles the session at its cap: later messages are refused, so
			// this fires once per session.
			if atBudget(after) {
				out = append(out, event.SessionBudgetReached)
			}
		case statusTerminated:
			out = append(out, event.SessionStatusTerminated)
		}
	}
	if !wasArchived && after.ArchivedAt != nil {
		out = append(out, event.SessionArchived)
	}
	return out
}

// emit appends the events of types for session id in tx. The store's
// namespace Update runs its function once, so ids minted here are stable; a
// duplicate would be dropped at fan-out all the same.
func (s sessionStore) emit(tx *store.NamespaceTx, id string, at time.Time, types ...string) error {
	if s.events == nil || len(types) == 0 || !s.events.Enabled() {
		return nil
	}
	for _, t := range types {
		if err := tx.AppendWebhookEvent(store.WebhookEvent{ID: event.NewID(), Type: t, ObjectID: id, CreatedAt: at.UTC()}); err != nil {
			return err
		}
	}
	return nil
}

// notify wakes webhook delivery after a commit that may have appended events.
func (s sessionStore) notify() {
	if s.events != nil {
		s.events.Notify()
	}
}
