package deployments

import (
	"time"

	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks/event"
)

// EventSink is told about the webhook events the service commits. The
// service appends each event inside the write transaction of the change it
// reports, so an event exists exactly when its change committed; Notify
// comes after the commit and never blocks.
type EventSink interface {
	// Enabled reports whether any endpoint wants events; when none does,
	// nothing is appended and a write costs nothing extra.
	Enabled() bool
	Notify()
}

// emit appends one event to the outbox in tx. id is minted before the
// transaction (event.NewID) so a transaction function run again appends it
// once: the outbox append is a pure function of the transaction.
func (s *Service) emit(tx *store.Tx, id, typ, objectID string, at time.Time) error {
	if s.events == nil || !s.events.Enabled() {
		return nil
	}
	return tx.AppendWebhookEvent(store.WebhookEvent{ID: id, Type: typ, ObjectID: objectID, CreatedAt: at.UTC()})
}

// notify wakes the delivery after a commit that may have appended events.
func (s *Service) notify() {
	if s.events != nil {
		s.events.Notify()
	}
}

// runOutcomeEvent is the event a recorded run reports.
func runOutcomeEvent(run Run) string {
	if run.Error != nil {
		return event.RunFailed
	}
	return event.RunSucceeded
}
