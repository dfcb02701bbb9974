package local

import (
	"fmt"
	"maps"
	"time"

	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks/event"
)

// updateSession applies POST /v1/sessions/{id} to the record. An update that
// changes a field also records a session.updated event (the SDK's
// BetaManagedAgentsSessionUpdatedEvent: only the fields that changed; title
// null when cleared; metadata the whole bag, left out when it became empty)
// and appends the session.updated webhook, all in one transaction. An update
// that changes nothing records neither, as the API does.
func (b *Backend) updateSession(id string, up deployments.SessionUpdate, now time.Time) (*sessionRecord, error) {
	return b.store.change(id, func(rec *sessionRecord) ([][]byte, []string, error) {
		beforeTitle, beforeMeta := rec.Title, maps.Clone(rec.Metadata)
		if up.Title.Set {
			rec.Title = up.Title.Value
		}
		if up.Metadata != nil {
			if rec.Metadata == nil {
				rec.Metadata = map[string]string{}
			}
			for k, v := range up.Metadata {
				if v == nil {
					delete(rec.Metadata, k)
				} else {
					rec.Metadata[k] = *v
				}
			}
			if len(rec.Metadata) > deployments.MaxMetadataPairs {
				return nil, nil, &badUpdateError{fmt.Sprintf("metadata: the session would have %d pairs, at most %d allowed", len(rec.Metadata), deployments.MaxMetadataPairs)}
			}
		}
		rec.UpdatedAt = now
		changed := map[string]any{}
		if rec.Title != beforeTitle {
			var title any // null: the title was cleared
			if rec.Title != "" {
				title = rec.Title
			}
			changed["title"] = title
		}
		if !maps.Equal(rec.Metadata, beforeMeta) && len(rec.Metadata) > 0 {
			changed["metadata"] = maps.Clone(rec.Metadata)
		}
		metaCleared := !maps.Equal(rec.Metadata, beforeMeta) && len(rec.Metadata) == 0
		if len(changed) == 0 && !metaCleared {
			return nil, nil, nil
		}
		return [][]byte{newEvent(eventSessionUpdated, now, changed)}, []string{event.SessionUpdated}, nil
	})
}

// change applies fn to a session record in one write transaction, appends
// the events fn returns, and appends the webhook events of the status
// transition (if any) and those fn names. fn may veto the change by
// returning an error.
func (s sessionStore) change(id string, fn func(*sessionRecord) (events [][]byte, hooks []string, err error)) (*sessionRecord, error) {
	var out *sessionRecord
	err := s.ns.Update(func(tx *store.NamespaceTx) error {
		rec, err := getRecord(tx, id)
		if err != nil {
			return err
		}
		beforeStatus, wasArchived := rec.Status, rec.ArchivedAt != nil
		events, hooks, err := fn(rec)
		if err != nil {
			return err
		}
		out = rec
		if err := putEvents(tx, rec, events); err != nil {
			return err
		}
		if err := s.index.markPending(tx, id); err != nil { // issue 26: copied after the commit
			return err
		}
		return s.emit(tx, id, rec.UpdatedAt, append(transitionEvents(beforeStatus, wasArchived, rec), hooks...)...)
	})
	if err == nil {
		s.notify()
		s.index.put(id)
	}
	return out, err
}
