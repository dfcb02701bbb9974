package local

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sandbox0/sandbox0d/store"
)

// pageCursor is the opaque page token of both lists. It names the item the
// page continues from, the direction, and what it belongs to, so a cursor
// from another list, session or order is refused instead of misread.
type pageCursor struct {
	Kind      string `json:"k"`           // "sessions" or "events"
	Order     string `json:"o"`           // "asc" or "desc"
	Backward  bool   `json:"b,omitempty"` // a prev_page: items before the pivot
	SessionID string `json:"s,omitempty"` // events: the session
	Seq       uint64 `json:"q,omitempty"` // events: pivot sequence
	CreatedAt int64  `json:"t,omitempty"` // sessions: pivot created_at (unix ns)
	ID        string `json:"i,omitempty"` // sessions: pivot id
}

var errBadCursor = errors.New("page: not a valid page cursor for this list")

func (c pageCursor) encode() *string {
	b, _ := json.Marshal(c) // plain strings and numbers
	s := base64.RawURLEncoding.EncodeToString(b)
	return &s
}

func decodeCursor(token, kind, order string) (*pageCursor, error) {
	if token == "" {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return nil, errBadCursor
	}
	var c pageCursor
	if err := json.Unmarshal(raw, &c); err != nil || c.Kind != kind {
		return nil, errBadCursor
	}
	if c.Order != order {
		return nil, fmt.Errorf("page: the cursor was made for order=%s", c.Order)
	}
	return &c, nil
}

// timeRange is the created_at[gt|gte|lt|lte] filter.
type timeRange struct{ gt, gte, lt, lte *time.Time }

func (r timeRange) contains(t time.Time) bool {
	return (r.gt == nil || t.After(*r.gt)) && (r.gte == nil || !t.Before(*r.gte)) &&
		(r.lt == nil || t.Before(*r.lt)) && (r.lte == nil || !t.After(*r.lte))
}

// sessionFilter holds the filters of GET /v1/sessions.
type sessionFilter struct {
	deploymentID    string
	agentID         string
	agentVersion    int64 // only with agentID, as the API documents
	statuses        map[string]bool
	includeArchived bool
	created         timeRange
	matchNothing    bool // memory_store_id: local sessions never have one
}

func (f sessionFilter) match(rec *sessionRecord) bool {
	switch {
	case f.matchNothing:
		return false
	case f.deploymentID != "" && rec.DeploymentID != f.deploymentID:
		return false
	case f.agentID != "" && rec.Agent.ID != f.agentID:
		return false
	case f.agentID != "" && f.agentVersion != 0 && rec.Agent.Version != f.agentVersion:
		return false
	case len(f.statuses) > 0 && !f.statuses[rec.Status]:
		return false
	case !f.includeArchived && rec.ArchivedAt != nil:
		return false
	}
	return f.created.contains(rec.CreatedAt)
}

// listSessions returns up to limit sessions in list order from the cursor,
// and whether more follow in the direction read.
func (s sessionStore) listSessions(f sessionFilter, desc bool, cur *pageCursor, limit int) ([]*sessionRecord, bool, error) {
	var out []*sessionRecord
	err := s.ns.View(func(tx *store.NamespaceTx) error {
		index, prefix := tx.Bucket(bucketSessionsByCreated), []byte(nil)
		if f.deploymentID != "" {
			index, prefix = tx.Bucket(bucketSessionsByDeployment), deploymentPrefix(f.deploymentID)
		}
		var pivot []byte
		backward := desc
		if cur != nil {
			pivot = append(be64(uint64(cur.CreatedAt)), cur.ID...)
			backward = desc != cur.Backward
		}
		records := tx.Bucket(bucketSessions)
		var err error
		index.Scan(prefix, pivot, backward, func(key, _ []byte) bool {
			id := key[8:]
			v := records.Get(id)
			if v == nil { // only possible for a deployment id containing NUL
				return true
			}
			var rec *sessionRecord
			if rec, err = decodeRecord(v); err != nil {
				err = fmt.Errorf("session %s: %w", id, err)
				return false
			}
			if f.match(rec) {
				out = append(out, rec)
			}
			return len(out) <= limit
		})
		return err
	})
	if err != nil {
		return nil, false, err
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	if cur != nil && cur.Backward {
		slices.Reverse(out)
	}
	return out, more, nil
}

// eventFilter holds the filters of GET /v1/sessions/{id}/events.
type eventFilter struct {
	types   map[string]bool
	created timeRange
}

func (f eventFilter) match(ev storedEvent) bool {
	return (len(f.types) == 0 || f.types[ev.Type]) && f.created.contains(ev.ProcessedAt)
}

// listEvents returns up to limit events of a session after the cursor, and
// whether more follow.
func (s sessionStore) listEvents(sessionID string, f eventFilter, desc bool, afterSeq uint64, limit int) ([]storedEvent, bool, error) {
	var out []storedEvent
	err := s.ns.View(func(tx *store.NamespaceTx) error {
		if tx.Bucket(bucketSessions).Get([]byte(sessionID)) == nil {
			return errSessionNotFound
		}
		var pivot []byte
		if afterSeq != 0 {
			pivot = be64(afterSeq)
		}
		var err error
		tx.Bucket(bucketEvents).Scan(eventPrefix(sessionID), pivot, desc, func(key, value []byte) bool {
			var ev storedEvent
			if ev, err = decodeStoredEvent(key, value); err != nil {
				err = fmt.Errorf("session %s: %w", sessionID, err)
				return false
			}
			if f.match(ev) {
				out = append(out, ev)
			}
			return len(out) <= limit
		})
		return err
	})
	if err != nil {
		return nil, false, err
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

// sessionCursor makes the cursor that continues from rec.
func sessionCursor(rec *sessionRecord, order string, backward bool) *string {
	return pageCursor{Kind: "sessions", Order: order, Backward: backward,
		CreatedAt: rec.CreatedAt.UnixNano(), ID: rec.ID}.encode()
}

func pivotCursor(cur *pageCursor, backward bool) *string {
	c := *cur
	c.Backward = backward
	return c.encode()
}
