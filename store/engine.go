package store

import bolt "go.etcd.io/bbolt"

// The engine seam. Everything above this file (typed indexes, listings, the
// webhook outbox, namespaces, group commit) talks to an ordered key/value
// engine through these few interfaces, so the same code runs on the
// embedded bbolt file (engine_bolt.go) and on an etcd cluster
// (engine_etcd.go). The shape is bbolt's: named buckets of ordered byte
// keys, cursors that seek and step both ways, a sequence per bucket, and
// read-only or read-write transactions run as closures. An engine may run a
// write closure more than once (etcd reruns it on a conflict), which the
// domain already allows for: group commit and Batch demanded it before.

// engine is one open store.
type engine interface {
	// view runs fn in a read-only transaction.
	view(fn func(kvTx) error) error
	// update runs fn in a read-write transaction and commits it. It may run
	// fn again (a conflict with another writer); fn must be idempotent.
	update(fn func(kvTx) error) error
	close() error
	// kind names the engine in messages ("bbolt", "etcd").
	kind() string
}

// kvTx, kvBucket and kvCursor hold one engine's handle each and dispatch
// on which is set. They are concrete types, not interfaces, for bbolt's
// speed: a key passed through an interface method escapes to the heap
// (the compiler cannot see the callee), and every index key the store
// builds on the stack (ids, created|id, sequence numbers) then became an
// allocation — +5 to +8 per write in the benchmarks of the first version
// of this seam. A branch on a nil pointer costs nothing measurable.

// kvTx is a transaction.
type kvTx struct {
	b *bolt.Tx
	e *etcdTx
}

// Bucket opens a bucket the schema declares.
func (t kvTx) Bucket(name []byte) kvBucket {
	if t.b != nil {
		return kvBucket{b: t.b.Bucket(name)}
	}
	return kvBucket{e: t.e.Bucket(name)}
}

// RequireFence makes the transaction commit only while f holds (etcd: the
// leader key's create revision is f.Rev). It returns ErrFenced at once when
// f no longer holds at the transaction's snapshot. On bbolt it always
// holds: one process owns the file (its lock), there is no other leader.
func (t kvTx) RequireFence(f Fence) error {
	if t.b != nil {
		return nil
	}
	return t.e.RequireFence(f)
}

// kvBucket is an ordered key/value bucket inside a transaction. Slices it
// returns are valid only until the transaction ends.
type kvBucket struct {
	b *bolt.Bucket
	e *etcdBucket
}

func (k kvBucket) Get(key []byte) []byte {
	if k.b != nil {
		return k.b.Get(key)
	}
	return k.e.Get(key)
}

// GetLikelyAbsent is Get for a key that is almost never present (a fire
// claim). etcd answers it without a round trip, taking the key as absent
// and making the commit depend on that (see etcdTx.getLikelyAbsent).
func (k kvBucket) GetLikelyAbsent(key []byte) []byte {
	if k.b != nil {
		return k.b.Get(key)
	}
	return k.e.GetLikelyAbsent(key)
}

func (k kvBucket) Put(key, value []byte) error {
	if k.b != nil {
		return k.b.Put(key, value)
	}
	return k.e.Put(key, value)
}

func (k kvBucket) Delete(key []byte) error {
	if k.b != nil {
		return k.b.Delete(key)
	}
	return k.e.Delete(key)
}

// DeletePrefix removes every key that starts with prefix.
func (k kvBucket) DeletePrefix(prefix []byte) error {
	if k.b != nil {
		return boltDeletePrefix(k.b, prefix)
	}
	return k.e.DeletePrefix(prefix)
}

func (k kvBucket) ForEach(fn func(k, v []byte) error) error {
	if k.b != nil {
		return k.b.ForEach(fn)
	}
	return k.e.ForEach(fn)
}

func (k kvBucket) Cursor() kvCursor {
	if k.b != nil {
		return kvCursor{b: k.b.Cursor()}
	}
	return kvCursor{e: k.e.Cursor()}
}

// KeyN is the number of keys in the bucket.
func (k kvBucket) KeyN() int {
	if k.b != nil {
		return k.b.Stats().KeyN
	}
	return k.e.KeyN()
}

// NextSequence returns the bucket's next sequence number (1, 2, …).
func (k kvBucket) NextSequence() (uint64, error) {
	if k.b != nil {
		return k.b.NextSequence()
	}
	return k.e.NextSequence()
}

// kvCursor walks a bucket in key order. Each method returns the key and
// value it lands on, or nil keys past either end.
type kvCursor struct {
	b *bolt.Cursor
	e *etcdCursor
}

func (c kvCursor) First() ([]byte, []byte) {
	if c.b != nil {
		return c.b.First()
	}
	return c.e.First()
}

func (c kvCursor) Last() ([]byte, []byte) {
	if c.b != nil {
		return c.b.Last()
	}
	return c.e.Last()
}

func (c kvCursor) Next() ([]byte, []byte) {
	if c.b != nil {
		return c.b.Next()
	}
	return c.e.Next()
}

func (c kvCursor) Prev() ([]byte, []byte) {
	if c.b != nil {
		return c.b.Prev()
	}
	return c.e.Prev()
}

// Seek lands on the first key >= seek.
func (c kvCursor) Seek(seek []byte) ([]byte, []byte) {
	if c.b != nil {
		return c.b.Seek(seek)
	}
	return c.e.Seek(seek)
}

// Sequence is the bucket's last sequence number (0: none handed out).
func (k kvBucket) Sequence() uint64 {
	if k.b != nil {
		return k.b.Sequence()
	}
	return k.e.Sequence()
}

// SetSequence sets the bucket's sequence (migrate copies it, so numbers
// handed out after the copy never repeat one from before).
func (k kvBucket) SetSequence(n uint64) error {
	if k.b != nil {
		return k.b.SetSequence(n)
	}
	return k.e.SetSequence(n)
}
