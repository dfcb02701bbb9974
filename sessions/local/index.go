package local

import (
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/sandbox0/sandbox0d/store"
)

// The session index (issue 26, cluster mode). A local session's record,
// workspace, processes and events stay on the node that runs it, in that
// node's own file; the shared store holds a copy of each record tagged with
// its node, so any node can list every session (same order, same cursors:
// the index has the same three buckets, read by the same listing code) and
// can tell which node to forward a session's routes to.
//
// The copy is written after the local commit, not in it (two stores cannot
// share a transaction): a crash in between leaves the index one change
// behind, and the node's start reconciles it (reconcileIndex). Only changes
// of status, archive or fields are copied; the events of a turn are not, so
// a harness printing fast writes to its own disk and not to etcd.

type sessionIndex struct {
	ns   *store.Namespace
	node string
	log  *slog.Logger
}

// put copies rec into the index, tagged with this node. A failure is logged,
// not returned: the local change committed, and the next change or the next
// start repairs the copy.
func (x *sessionIndex) put(rec *sessionRecord) {
	if x == nil || rec == nil {
		return
	}
	if err := x.write(rec); err != nil {
		x.log.Warn("cluster: the session index could not be updated; it is repaired at the next change or start",
			"session_id", rec.ID, "error", err)
	}
}

// putAfter is put for a deferred call whose record is only complete later.
func (x *sessionIndex) putAfter(rec *sessionRecord) { x.put(rec) }

func (x *sessionIndex) write(rec *sessionRecord) error {
	cp := *rec
	cp.Node = x.node
	cp.Process = nil // a pid means nothing on another machine
	doc, err := json.Marshal(&cp)
	if err != nil {
		return err
	}
	return x.ns.Update(func(tx *store.NamespaceTx) error {
		created := createdKey(rec)
		if err := tx.Bucket(bucketSessionsByCreated).Put(created, nil); err != nil {
			return err
		}
		if rec.DeploymentID != "" {
			if err := tx.Bucket(bucketSessionsByDeployment).Put(deploymentKey(rec.DeploymentID, created), nil); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketSessions).Put([]byte(rec.ID), doc)
	})
}

// remove drops a session from the index.
func (x *sessionIndex) remove(id string) {
	if x == nil {
		return
	}
	if err := removeIndexed(x.ns, id); err != nil {
		x.log.Warn("cluster: a deleted session could not be removed from the session index", "session_id", id, "error", err)
	}
}

func removeIndexed(ns *store.Namespace, id string) error {
	return ns.Update(func(tx *store.NamespaceTx) error {
		rec, err := getRecord(tx, id)
		if errors.Is(err, errSessionNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		created := createdKey(rec)
		if err := tx.Bucket(bucketSessionsByCreated).Delete(created); err != nil {
			return err
		}
		if rec.DeploymentID != "" {
			if err := tx.Bucket(bucketSessionsByDeployment).Delete(deploymentKey(rec.DeploymentID, created)); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketSessions).Delete([]byte(id))
	})
}

// reconcileIndex makes the index agree with this node's file at start: every
// local session is copied (its own record wins), and entries that name this
// node for sessions it no longer has are dropped.
func (b *Backend) reconcileIndex() error {
	x := b.store.index
	if x == nil {
		return nil
	}
	local, err := b.store.sessionsWhere(func(*sessionRecord) bool { return true })
	if err != nil {
		return err
	}
	have := make(map[string]bool, len(local))
	for _, rec := range local {
		have[rec.ID] = true
		if err := x.write(rec); err != nil {
			return err
		}
	}
	var stale []string
	if err := x.ns.View(func(tx *store.NamespaceTx) error {
		return tx.Bucket(bucketSessions).ForEach(func(k, v []byte) error {
			var head struct {
				Node string `json:"node"`
			}
			if json.Unmarshal(v, &head) == nil && head.Node == x.node && !have[string(k)] {
				stale = append(stale, string(k))
			}
			return nil
		})
	}); err != nil {
		return err
	}
	for _, id := range stale {
		if err := removeIndexed(x.ns, id); err != nil {
			return err
		}
	}
	return nil
}

// ReconcileIndex copies this node's records into the index again: the
// daemon calls it when the node holds a new lease, since while it held none
// the leader may have marked its sessions lost.
func (b *Backend) ReconcileIndex() error { return b.reconcileIndex() }

// IndexedNode returns the node that owns session id according to the index
// in ns ("" when the index has no such session).
func IndexedNode(ns *store.Namespace, id string) (string, error) {
	var node string
	err := ns.View(func(tx *store.NamespaceTx) error {
		v := tx.Bucket(bucketSessions).Get([]byte(id))
		if v == nil {
			return nil
		}
		var head struct {
			Node string `json:"node"`
		}
		if err := json.Unmarshal(v, &head); err != nil {
			return err
		}
		node = head.Node
		return nil
	})
	return node, err
}

// nodeOf is the node shown on a session in cluster mode: the index copy's
// owner, or this node for its own records; "" on one box.
func (b *Backend) nodeOf(rec *sessionRecord) string {
	if b.store.index == nil {
		return ""
	}
	if rec.Node != "" {
		return rec.Node
	}
	return b.store.index.node
}
