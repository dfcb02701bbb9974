package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks/event"
)

// Deleting a session whose node is dead (issue 26). Its record, events and
// workspace are on that node's disk and cannot be reached, but the delete is
// not refused: the session leaves the index at once (lists and retrieves on
// every node no longer show it; a retrieve answers 404, as after any delete)
// and a tombstone naming the node is recorded in the same transaction of the
// shared store, with the session.deleted webhook event (delivered by the
// leader, so it is reported once). The node, when it comes back (at start,
// and every quarter lease while it holds one), deletes those sessions'
// records, events and workspaces without reporting them again, then clears
// the tombstones; its re-copy of its records into the index skips them,
// since they are gone from its file first.

const bucketIndexTombstones = "tombstones" // node 0x00 session id → tombstone JSON

type tombstone struct {
	DeletedAt time.Time `json:"deleted_at"`
	By        string    `json:"by,omitempty"` // the node the delete was made through
}

func tombstoneKey(node, id string) []byte { return append(append([]byte(node), 0), id...) }

// DeleteLost deletes session id, which node owns and which cannot be
// reached, from the index in ns and leaves a tombstone for node; hooks says
// whether a session.deleted webhook event is wanted (the shared outbox's
// endpoints). found is false when the index has no such session (already
// deleted: the caller answers 404).
func DeleteLost(ns *store.Namespace, id, node, by string, now time.Time, hooks bool) (found bool, err error) {
	err = ns.Update(func(tx *store.NamespaceTx) error {
		found = false
		rec, err := removeIndexedTx(tx, id)
		if err != nil || rec == nil {
			return err
		}
		if rec.Node != node {
			return fmt.Errorf("session %s is indexed on node %q, not %q; retry the delete", id, rec.Node, node)
		}
		doc, err := json.Marshal(tombstone{DeletedAt: now.UTC(), By: by})
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketIndexTombstones).Put(tombstoneKey(node, id), doc); err != nil {
			return err
		}
		found = true
		if !hooks {
			return nil
		}
		return tx.AppendWebhookEvent(store.WebhookEvent{ID: event.NewID(), Type: event.SessionDeleted, ObjectID: id, CreatedAt: now.UTC()})
	})
	return found, err
}

// applyTombstones deletes the sessions deleted through other nodes while
// this one was away, then their tombstones.
func (b *Backend) applyTombstones() error {
	x := b.store.index
	if x == nil {
		return nil
	}
	prefix := tombstoneKey(x.node, "")
	var ids []string
	if err := x.ns.View(func(tx *store.NamespaceTx) error {
		tx.Bucket(bucketIndexTombstones).Scan(prefix, nil, false, func(k, _ []byte) bool {
			ids = append(ids, string(k))
			return true
		})
		return nil
	}); err != nil {
		return err
	}
	quiet := b.store
	quiet.events = nil // reported by the delete that left the tombstone
	for _, id := range ids {
		err := b.removeSession(id, quiet)
		if err != nil && !errors.Is(err, errSessionNotFound) {
			return fmt.Errorf("session %s: %w", id, err)
		}
		if err := x.ns.Update(func(tx *store.NamespaceTx) error {
			return tx.Bucket(bucketIndexTombstones).Delete(tombstoneKey(x.node, id))
		}); err != nil {
			return err
		}
		b.log.Info("cluster: session deleted through another node while this one was away; its record, events and workspace removed here",
			"session_id", id)
	}
	return nil
}
