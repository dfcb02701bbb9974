package local

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sandbox0/sandbox0d/internal/listparams"
	"github.com/sandbox0/sandbox0d/store"
)

// pageCursor is where a page of either list continues: the pivot item
// (exclusive) and the direction. The store's signed codec binds it to the
// list, its filters and its order (the scope), so a cursor from another list,
// session, order or filter set is refused instead of misread.
type pageCursor struct {
	Backward  bool   // a prev_page: items before the pivot
	Seq       uint64 // events: pivot sequence
	CreatedAt int64  // sessions: pivot created_at (unix ns)
	ID        string // sessions: pivot id
}

const cursorBackward = 1 << 0

// payload is flags | seq or created (8) | id.
func (c pageCursor) payload() []byte {
	var flags byte
	if c.Backward {
		flags |= cursorBackward
	}
	n := c.Seq
	if c.ID != "" {
		n = uint64(c.CreatedAt)
	}
	return append(append([]byte{flags}, be64(n)...), c.ID...)
}

var errBadCursor = errors.New("page: invalid cursor; pass the next_page or prev_page value of a previous response to the same listing with the same filters and order")

// encodeCursor signs c for scope.
func (b *Backend) encodeCursor(scope string, c pageCursor) *string {
	s := b.cursors.Encode(scope, c.payload())
	return &s
}

// decodeCursor reads a page token of scope; nil when there is none.
func (b *Backend) decodeCursor(scope, token string, sessions bool) (*pageCursor, error) {
	if token == "" {
		return nil, nil
	}
	p, err := b.cursors.Decode(scope, token)
	if err != nil || len(p) < 9 || (sessions && len(p) < 10) || (!sessions && len(p) != 9) {
		return nil, errBadCursor
	}
	c := &pageCursor{Backward: p[0]&cursorBackward != 0}
	n := binary.BigEndian.Uint64(p[1:9])
	if sessions {
		c.CreatedAt, c.ID = int64(n), string(p[9:])
	} else {
		c.Seq = n
	}
	return c, nil
}

// sessionFilter holds the filters of GET /v1/sessions.
type sessionFilter struct {
	deploymentID    string
	agentID         string
	agentVersion    int64 // only with agentID, as the API documents
	statuses        map[string]bool
	includeArchived bool
	created         listparams.TimeRange
	memoryStoreID   string // local sessions never have one: matches nothing
}

// scope is the cursor scope of a session listing: its filters and order.
func (f sessionFilter) scope(order string) string {
	var statuses []string
	for s := range f.statuses {
		statuses = append(statuses, s)
	}
	slices.Sort(statuses)
	version := ""
	if f.agentVersion != 0 {
		version = fmt.Sprint(f.agentVersion)
	}
	return listparams.Scope("local_sessions", map[string]string{
		"order": order, "deployment_id": f.deploymentID, "agent_id": f.agentID, "agent_version": version,
		"statuses": strings.Join(statuses, ","), "include_archived": fmt.Sprint(f.includeArchived),
		"memory_store_id": f.memoryStoreID,
		"created_at[gt]":  listparams.FormatTime(f.created.GT), "created_at[gte]": listparams.FormatTime(f.created.GTE),
		"created_at[lt]": listparams.FormatTime(f.created.LT), "created_at[lte]": listparams.FormatTime(f.created.LTE),
	})
}

func (f sessionFilter) match(rec *sessionRecord) bool {
	switch {
	case f.memoryStoreID != "":
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
	return f.created.Contains(rec.CreatedAt)
}

// listSessions returns up to limit sessions in list order from the cursor,
// and whether more follow in the direction read.
func (s sessionStore) listSessions(f sessionFilter, desc bool, cur *pageCursor, limit int) ([]*sessionRecord, bool, error) {
	var out []*sessionRecord
	ns := s.ns
	if s.index != nil {
		ns = s.index.ns // issue 26: the cluster-wide list, same buckets' layout
	}
	err := ns.View(func(tx *store.NamespaceTx) error {
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
	created listparams.TimeRange
}

// scope is the cursor scope of one session's event listing.
func (f eventFilter) scope(sessionID, order string) string {
	var types []string
	for t := range f.types {
		types = append(types, t)
	}
	slices.Sort(types)
	return listparams.Scope("local_events/"+sessionID, map[string]string{
		"order": order, "types": strings.Join(types, ","),
		"created_at[gt]": listparams.FormatTime(f.created.GT), "created_at[gte]": listparams.FormatTime(f.created.GTE),
		"created_at[lt]": listparams.FormatTime(f.created.LT), "created_at[lte]": listparams.FormatTime(f.created.LTE),
	})
}

func (f eventFilter) match(ev storedEvent) bool {
	return (len(f.types) == 0 || f.types[ev.Type]) && f.created.Contains(ev.ProcessedAt)
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
func sessionCursor(rec *sessionRecord, backward bool) pageCursor {
	return pageCursor{Backward: backward, CreatedAt: rec.CreatedAt.UnixNano(), ID: rec.ID}
}
