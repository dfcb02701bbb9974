package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sandbox0/sandbox0d/internal/wire"
	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks/event"
)

// A node dies (issue 26). When a node's lease expires its sessions cannot be
// reached; the leader marks them in the index as lost: the last known
// record with status terminated and a session.error event naming the node.
// The mark and its webhook event are one transaction of the shared store
// that first checks the copy is not terminated yet, so two leaders in turn
// (or a rerun) report each session once. When the node returns, the
// sessions that were running end as on any restart, without a second report
// when the index holds the leader's mark for them (lostReported); once it
// holds a lease it copies its own records over the marks (SyncIndex): its
// records win for the sessions it still has.

// MarkLost marks every indexed session of a node that live does not know as
// lost. hooks says whether webhook events are wanted (the shared outbox's
// dispatcher has endpoints). It returns the ids marked.
//
// A copy written less than fresh (the lease TTL) ago is left alone: its node
// wrote it while alive, or is returning and has not taken its lease yet.
func MarkLost(ns *store.Namespace, live func(node string) bool, now time.Time, fresh time.Duration, hooks bool) ([]string, error) {
	stale := func(rec *sessionRecord) bool { return rec.IndexedAt == nil || now.Sub(*rec.IndexedAt) >= fresh }
	var candidates []string
	if err := ns.View(func(tx *store.NamespaceTx) error {
		return tx.Bucket(bucketSessions).ForEach(func(k, v []byte) error {
			rec, err := decodeRecord(v)
			if err != nil {
				return fmt.Errorf("session index %s: %w", k, err)
			}
			if rec.Node != "" && !live(rec.Node) && rec.Status != statusTerminated && stale(rec) {
				candidates = append(candidates, rec.ID)
			}
			return nil
		})
	}); err != nil {
		return nil, err
	}
	var marked []string
	for _, id := range candidates {
		done := false
		err := ns.Update(func(tx *store.NamespaceTx) error {
			done = false
			rec, err := getRecord(tx, id)
			if err != nil || rec.Status == statusTerminated || live(rec.Node) || !stale(rec) {
				return nil // deleted, marked, or back meanwhile
			}
			at := now.UTC()
			rec.LostNode = rec.Node
			rec.LostEvent = errorEvent(&sessionFailure{Type: errorTypeUnknown,
				Message: fmt.Sprintf("node %s was lost: its cluster lease expired and the session cannot be reached; it ends here (the node reconciles when it returns)", rec.Node)},
				retryStatusTerminal, at)
			rec.Status, rec.UpdatedAt, rec.EndedAt = statusTerminated, at, &at
			doc, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketSessions).Put([]byte(id), doc); err != nil {
				return err
			}
			done = true
			if !hooks {
				return nil
			}
			return tx.AppendWebhookEvent(store.WebhookEvent{ID: event.NewID(), Type: event.SessionStatusTerminated, ObjectID: id, CreatedAt: at})
		})
		if err != nil {
			return marked, err
		}
		if done {
			marked = append(marked, id)
		}
	}
	return marked, nil
}

// lostReported says whether the index holds the leader's lost mark for
// session rec of this node: its end was reported then (with its webhook).
// When it does not, the same transaction writes rec's copy (fresh: see
// IndexedAt), so the leader cannot mark and report it once this node has
// checked: of the mark and this check, whichever commits first wins, and a
// turn's end is reported once. An index that cannot be read answers false:
// a second report is better than none.
func (b *Backend) lostReported(rec *sessionRecord) bool {
	x := b.store.index
	if x == nil {
		return false
	}
	reported := false
	err := x.ns.Update(func(tx *store.NamespaceTx) error {
		reported = false
		cp, err := getRecord(tx, rec.ID)
		if err == nil && cp.LostNode == x.node && cp.Status == statusTerminated {
			reported = true
			return nil
		}
		if err != nil && !errors.Is(err, errSessionNotFound) {
			return err
		}
		return x.writeTx(tx, rec)
	})
	if err != nil {
		b.log.Warn("cluster: the session index could not be read; a turn the leader may have reported lost is reported again",
			"session_id", rec.ID, "error", err)
		return false
	}
	return reported
}

// ServeLost answers a read of a session whose node is lost from its index
// copy: the session object (terminated) and its events as the one
// session.error that says why. It returns false when the index holds no
// lost mark for the session (the caller then says the node is unreachable).
func (b *Backend) ServeLost(w http.ResponseWriter, r *http.Request, ns *store.Namespace, id string) bool {
	var rec *sessionRecord
	if err := ns.View(func(tx *store.NamespaceTx) error {
		var err error
		rec, err = getRecord(tx, id)
		return err
	}); err != nil || rec.LostEvent == nil || r.Method != http.MethodGet {
		return false
	}
	switch strings.TrimPrefix(r.URL.Path, "/v1/sessions/"+id) {
	case "":
		writeJSON(w, http.StatusOK, b.viewSession(rec, b.cfg.Now()))
	case "/events":
		writeJSON(w, http.StatusOK, eventListResponse{Data: []json.RawMessage{rec.LostEvent}})
	default:
		wire.WriteError(w, http.StatusServiceUnavailable, fmt.Sprintf(
			"session %s lives on node %s, which was lost (its cluster lease expired); it reads as terminated until the node returns", id, rec.LostNode))
	}
	return true
}
