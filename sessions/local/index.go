package local

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandbox0/sandbox0d/store"
)

// The session index (issue 26, cluster mode). A local session's record,
// workspace, processes and events stay on the node that runs it, in that
// node's own file; the shared store holds a copy of each record tagged with
// its node, so any node can list every session (same order, same cursors:
// the index has the same three buckets, read by the same listing code) and
// can tell which node to forward a session's routes to.
//
// The copy cannot share the local change's transaction (two stores), so
// the change records an "index pending" entry (bucketIndexPending: id →
// token) in its own transaction, and the copy is flushed after the commit.
// An entry whose flush failed (etcd away, a crash after the commit) stays
// in the file and is drained by the daemon every quarter lease and at each
// new lease (SyncIndex): a missed copy is repaired without waiting for the
// session's next change. Only changes of status, archive or fields are
// copied; the events of a turn are not, so a harness printing fast writes to
// its own disk and not to etcd.

const bucketIndexPending = "index_pending" // id → token (8): a change not yet copied

type sessionIndex struct {
	ns    *store.Namespace // the shared index
	local *store.Namespace // this node's file (the records and the pending entries)
	node  string
	log   *slog.Logger

	token atomic.Uint64
	// stripes serialize the flushes of one session, so the last flush
	// copies the newest record whatever order the commits' flushes ran in.
	stripes [32]sync.Mutex
	mu      sync.Mutex
	flushed map[string]string // id → the pending token the index is known to hold (or be newer than)
	// down is set while flushes fail (etcd away): changes then only record
	// their pending entry instead of each waiting for a request timeout,
	// and the drain repairs the index when etcd answers again.
	down atomic.Bool
}

// markPending records in tx, the change's own transaction, that session id's
// index copy is behind.
func (x *sessionIndex) markPending(tx *store.NamespaceTx, id string) error {
	if x == nil {
		return nil
	}
	return tx.Bucket(bucketIndexPending).Put([]byte(id), be64(x.token.Add(1)))
}

// put copies session id's current record into the index after a commit
// (its removal when the session is gone). A failure is logged, not
// returned: the local change committed and its pending entry is drained.
func (x *sessionIndex) put(id string) {
	if x == nil || x.down.Load() {
		return
	}
	if err := x.flush(id, false); err != nil {
		x.down.Store(true)
		x.log.Warn("cluster: the session index could not be updated; the change stays pending in this node's file and is copied when etcd answers",
			"session_id", id, "error", err)
	}
}

// flush copies session id's record, as it is now in this node's file, into
// the index, or removes it from the index when the file no longer has it.
// Without force it does nothing when no change is pending.
func (x *sessionIndex) flush(id string, force bool) error {
	stripe := &x.stripes[fnv32(id)%uint32(len(x.stripes))]
	stripe.Lock()
	defer stripe.Unlock()
	var rec *sessionRecord
	var token []byte
	if err := x.local.View(func(tx *store.NamespaceTx) error {
		token = bytes.Clone(tx.Bucket(bucketIndexPending).Get([]byte(id)))
		var err error
		rec, err = getRecord(tx, id)
		if errors.Is(err, errSessionNotFound) {
			rec, err = nil, nil
		}
		return err
	}); err != nil {
		return err
	}
	if token == nil && !force {
		return nil
	}
	var err error
	if rec == nil {
		err = removeIndexed(x.ns, id)
	} else {
		err = x.write(rec)
	}
	if err != nil {
		return err
	}
	if token != nil {
		x.mu.Lock()
		x.flushed[id] = string(token)
		x.mu.Unlock()
	}
	return nil
}

// drain flushes every pending change and drops the entries the index now
// holds, in one transaction of this node's file.
func (x *sessionIndex) drain() error {
	pending := map[string]string{}
	if err := x.local.View(func(tx *store.NamespaceTx) error {
		return tx.Bucket(bucketIndexPending).ForEach(func(k, v []byte) error {
			pending[string(k)] = string(v)
			return nil
		})
	}); err != nil {
		return err
	}
	if len(pending) == 0 {
		x.down.Store(false)
		return nil
	}
	for id, token := range pending {
		x.mu.Lock()
		done := x.flushed[id] == token
		x.mu.Unlock()
		if done {
			continue
		}
		if err := x.flush(id, false); err != nil {
			return err
		}
	}
	x.down.Store(false)
	x.mu.Lock()
	defer x.mu.Unlock()
	err := x.local.Update(func(tx *store.NamespaceTx) error {
		b := tx.Bucket(bucketIndexPending)
		for id, token := range x.flushed {
			// A change committed since its flush has a new token: it stays.
			if string(b.Get([]byte(id))) == token {
				if err := b.Delete([]byte(id)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err == nil {
		clear(x.flushed)
	}
	return err
}

// HasSession says whether session id is in this node's own file (in a
// cluster: whether this node owns it), without reading the index.
func (b *Backend) HasSession(id string) bool {
	found := false
	_ = b.store.ns.View(func(tx *store.NamespaceTx) error {
		found = tx.Bucket(bucketSessions).Get([]byte(id)) != nil
		return nil
	})
	return found
}

// IndexPending is how many session changes wait for their index copy.
func (b *Backend) IndexPending() (int, error) {
	n := 0
	err := b.store.ns.View(func(tx *store.NamespaceTx) error {
		return tx.Bucket(bucketIndexPending).ForEach(func(_, _ []byte) error { n++; return nil })
	})
	return n, err
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

func (x *sessionIndex) write(rec *sessionRecord) error {
	return x.ns.Update(func(tx *store.NamespaceTx) error { return x.writeTx(tx, rec) })
}

// writeTx puts rec's copy, tagged with this node and the time, in tx.
func (x *sessionIndex) writeTx(tx *store.NamespaceTx, rec *sessionRecord) error {
	cp := *rec
	cp.Node = x.node
	cp.Process = nil // a pid means nothing on another machine
	now := time.Now().UTC()
	cp.IndexedAt = &now
	doc, err := json.Marshal(&cp)
	if err != nil {
		return err
	}
	if err := putListKeys(tx, rec); err != nil {
		return err
	}
	return tx.Bucket(bucketSessions).Put([]byte(rec.ID), doc)
}

func removeIndexed(ns *store.Namespace, id string) error {
	return ns.Update(func(tx *store.NamespaceTx) error {
		_, err := removeIndexedTx(tx, id)
		return err
	})
}

// removeIndexedTx drops session id from the index in tx and returns the
// copy it held (nil when none).
func removeIndexedTx(tx *store.NamespaceTx, id string) (*sessionRecord, error) {
	rec, err := getRecord(tx, id)
	if errors.Is(err, errSessionNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := deleteListKeys(tx, rec); err != nil {
		return nil, err
	}
	return rec, tx.Bucket(bucketSessions).Delete([]byte(id))
}

// reconcileIndex makes the index agree with this node's file: every local
// session is copied (its own record wins over a lost mark), and entries that
// name this node for sessions it no longer has are dropped. Each goes through
// flush, which reads the file under the session's stripe: a session created
// or deleted meanwhile is copied or dropped as it is now.
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
		if err := x.flush(rec.ID, true); err != nil {
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
		if err := x.flush(id, true); err != nil {
			return err
		}
	}
	return nil
}

// SyncIndex brings the index up to date with this node's file: the
// sessions deleted through other nodes while this one was away are deleted
// here (tombstones), the pending copies are flushed, and with newLease every
// record is copied again (while the node held no lease the leader may have
// marked its sessions lost). The daemon calls it every quarter lease while
// the node holds a lease; a failure is retried at the next call.
func (b *Backend) SyncIndex(newLease bool) error {
	if b.store.index == nil {
		return nil
	}
	if err := b.applyTombstones(); err != nil {
		return fmt.Errorf("applying the deletes made while this node was away: %w", err)
	}
	if newLease {
		if err := b.reconcileIndex(); err != nil {
			return fmt.Errorf("copying this node's sessions into the index: %w", err)
		}
	}
	if err := b.store.index.drain(); err != nil {
		return fmt.Errorf("copying the pending session changes into the index: %w", err)
	}
	return nil
}

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
