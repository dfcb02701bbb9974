package store

import (
	"bytes"
	"errors"
	"fmt"
	"time"
)

// DeploymentIndex is what the indexes need to know about a deployment
// document; the document itself is opaque to the store.
type DeploymentIndex struct {
	ID        string
	CreatedAt time.Time
	AgentID   string
	Archived  bool
	Paused    bool
}

const (
	deplFlagArchived = 1 << 0
	deplFlagPaused   = 1 << 1
)

func encodeDeplEntry(ix DeploymentIndex) []byte {
	var flags byte
	if ix.Archived {
		flags |= deplFlagArchived
	}
	if ix.Paused {
		flags |= deplFlagPaused
	}
	return append([]byte{flags}, ix.AgentID...)
}

func decodeDeplEntry(v []byte) (flags byte, agentID string) {
	if len(v) == 0 {
		return 0, ""
	}
	return v[0], string(v[1:])
}

// ViewDeployment returns the document without copying it, or nil when
// absent; it is valid only until the transaction ends, and never to be
// written to: on bbolt it is the file's mapped page, on etcd it may be the
// node's read mirror, shared by every transaction (GetDeployment copies).
func (tx *Tx) ViewDeployment(id string) []byte {
	return tx.bucket(bucketDeployments).Get([]byte(id))
}

// GetDeployment returns a copy of the document, or nil when absent.
func (tx *Tx) GetDeployment(id string) []byte {
	v := tx.ViewDeployment(id)
	if v == nil {
		return nil
	}
	return append([]byte(nil), v...)
}

// PutDeployment inserts or replaces a document and keeps every index in step.
// CreatedAt must not change between puts of the same id.
func (tx *Tx) PutDeployment(ix DeploymentIndex, doc []byte) error {
	if ix.ID == "" {
		return errors.New("put deployment: empty id")
	}
	byCreated := tx.bucket(bucketDeplByCreated)
	ck := createdKey(ix.CreatedAt, ix.ID)
	entry := encodeDeplEntry(ix)
	old := byCreated.Get(ck)
	if old != nil {
		if _, oldAgent := decodeDeplEntry(old); oldAgent != ix.AgentID {
			if err := tx.bucket(bucketDeplByAgent).Delete(prefixed(oldAgent, ck)); err != nil {
				return err
			}
		}
	} else if tx.bucket(bucketDeployments).Get([]byte(ix.ID)) != nil {
		return fmt.Errorf("put deployment %s: created_at changed", ix.ID)
	}
	if err := tx.bucket(bucketDeployments).Put([]byte(ix.ID), doc); err != nil {
		return err
	}
	if bytes.Equal(old, entry) {
		// Most writes (a fire's last_run_at, a rename) leave the index entries
		// as they are: rewriting them would only dirty two more random pages
		// per write for the commit to copy and fsync.
		return nil
	}
	if err := byCreated.Put(ck, entry); err != nil {
		return err
	}
	return tx.bucket(bucketDeplByAgent).Put(prefixed(ix.AgentID, ck), nil)
}

// ForEachDeployment calls fn for every document in id order. The slice is
// only valid during the call.
func (tx *Tx) ForEachDeployment(fn func(id string, doc []byte) error) error {
	return tx.bucket(bucketDeployments).ForEach(func(k, v []byte) error { return fn(string(k), v) })
}

// DeploymentQuery filters a newest-first listing of deployments.
type DeploymentQuery struct {
	AgentID         string
	Status          string // "", "active" or "paused"
	IncludeArchived bool
	CreatedGTE      time.Time // zero: unbounded
	CreatedLTE      time.Time // zero: unbounded
	After           *Position // exclusive; nil: from the newest
	Limit           int
}

// ListDeployments returns up to Limit documents matching q, newest first, and
// the position to continue from when more may follow.
func (tx *Tx) ListDeployments(q DeploymentQuery) ([][]byte, *Position, error) {
	var out [][]byte
	next, err := tx.EachDeployment(q, func(doc []byte) error {
		out = append(out, append([]byte(nil), doc...))
		return nil
	})
	return out, next, err
}

// EachDeployment is ListDeployments handing each document to fn, valid only
// during the call, instead of returning copies.
func (tx *Tx) EachDeployment(q DeploymentQuery, fn func(doc []byte) error) (*Position, error) {
	byCreated := tx.bucket(bucketDeplByCreated)
	walkingCreated := q.AgentID == ""
	w := tx.indexWalk(q.AgentID, bucketDeplByAgent, bucketDeplByCreated, upperBound(q.After, q.CreatedLTE, false))
	return eachPage(w, tx.bucket(bucketDeployments), "deployment", q.Limit,
		[]lowerBound{{At: q.CreatedGTE}}, func(k, entry []byte) bool {
			// The agent index holds no flags; they live in the created
			// index, which is what a walk without an agent reads already.
			if !walkingCreated {
				entry = byCreated.Get(k)
			}
			flags, _ := decodeDeplEntry(entry)
			archived := flags&deplFlagArchived != 0
			paused := flags&deplFlagPaused != 0
			switch {
			case archived:
				return q.IncludeArchived && q.Status == ""
			case q.Status == "active":
				return !paused
			case q.Status == "paused":
				return paused
			}
			return true
		}, fn)
}

// DeploymentCount is the number of stored deployments, archived included.
func (tx *Tx) DeploymentCount() int { return tx.bucket(bucketDeployments).KeyN() }
