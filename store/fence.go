package store

import "errors"

// A Fence is proof of leadership that a transaction can be made to depend
// on: in etcd, the election key of the leader and its create revision. A
// leader that was deposed (its lease lapsed, another node won) still holds
// an old Fence; a transaction fenced by it is refused, so a paused leader
// waking up cannot fire. The zero Fence fences nothing.
type Fence struct {
	Key string // the full etcd key of the leader's election entry
	Rev int64  // its create revision
}

// IsZero reports whether f fences nothing.
func (f Fence) IsZero() bool { return f.Key == "" }

// ErrFenced is returned by a fenced write whose fence no longer holds.
var ErrFenced = errors.New("store: this node is no longer the leader (its election key changed); the write was refused")

// RequireFence makes the transaction commit only while f holds; see Fence.
// On the bbolt engine it always holds. A zero f is a no-op.
func (tx *Tx) RequireFence(f Fence) error {
	if f.IsZero() {
		return nil
	}
	return tx.tx.RequireFence(f)
}
