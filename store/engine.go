package store

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
	// batch is update that may be coalesced with concurrent batch calls.
	batch(fn func(kvTx) error) error
	close() error
	// kind names the engine in messages ("bbolt", "etcd").
	kind() string
}

// kvTx is a transaction.
type kvTx interface {
	// Bucket opens a bucket the schema declares. It never returns nil.
	Bucket(name []byte) kvBucket
	// RequireFence makes the transaction commit only while f holds (etcd:
	// the leader key's create revision is f.Rev). It returns ErrFenced at
	// once when f no longer holds at the transaction's snapshot.
	RequireFence(f Fence) error
}

// kvBucket is an ordered key/value bucket inside a transaction. Slices it
// returns are valid only until the transaction ends.
type kvBucket interface {
	Get(key []byte) []byte
	Put(key, value []byte) error
	Delete(key []byte) error
	// DeletePrefix removes every key that starts with prefix.
	DeletePrefix(prefix []byte) error
	ForEach(fn func(k, v []byte) error) error
	Cursor() kvCursor
	// KeyN is the number of keys in the bucket.
	KeyN() int
	// NextSequence returns the bucket's next sequence number (1, 2, …).
	NextSequence() (uint64, error)
}

// kvCursor walks a bucket in key order. Each method returns the key and
// value it lands on, or nil keys past either end.
type kvCursor interface {
	First() (k, v []byte)
	Last() (k, v []byte)
	Next() (k, v []byte)
	Prev() (k, v []byte)
	// Seek lands on the first key >= seek.
	Seek(seek []byte) (k, v []byte)
}
