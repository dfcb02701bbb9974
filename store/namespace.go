package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// A Namespace is the handle another package keeps its own records through
// (the local session backend: sessions and their events). It opens only the
// buckets the schema declares for that namespace, and shares the file, its
// lock and its write transactions with the store.
//
// Same file rather than a file of its own, decided by a number: bbolt has one
// writer at a time, so harness event appends do contend with the fire path.
// BenchmarkFireUnderEventLoad (2 cores, fsync on, 200 fires x 3) measured a
// lone scheduled fire at 14 ms idle, 26 ms (1.8x) while four harnesses
// append events flat out into the same file, and 14 ms (1.0x) with their own
// file. +12 ms on a fire in the worst case is far inside a schedule's minute
// granularity and misfire grace, while a second file would split the lock,
// the hot backup and offline compaction in two. Revisit if sessions ever
// write faster than one commit per output batch.
type Namespace struct {
	eng     engine
	db      *bolt.DB // the bbolt engine's file, called directly (see Store.View)
	name    string
	buckets map[string][]byte // name within the namespace → bucket name
	cursors *Cursors
}

// Cursors is the store's page-token codec, for the namespace's listings.
func (n *Namespace) Cursors() *Cursors { return n.cursors }

// Namespace returns the handle of a namespace the schema declares buckets for.
func (s *Store) Namespace(name string) (*Namespace, error) {
	return s.namespaceWith(name, s.Cursors())
}

func (s *Store) namespaceWith(name string, cursors *Cursors) (*Namespace, error) {
	ns := &Namespace{eng: s.eng, db: s.db, name: name, buckets: map[string][]byte{}, cursors: cursors}
	for _, b := range schema {
		if b.namespace == name {
			ns.buckets[b.local] = b.name
		}
	}
	if len(ns.buckets) == 0 {
		return nil, fmt.Errorf("store: the schema declares no buckets for namespace %q", name)
	}
	return ns, nil
}

// Sibling opens another namespace of the same store: a package given one
// namespace reaches the others it owns (the local backend's catalog) where
// nobody handed it a handle of its own, as on one box, where they share
// the file.
func (n *Namespace) Sibling(name string) (*Namespace, error) {
	return (&Store{eng: n.eng, db: n.db}).namespaceWith(name, n.cursors)
}

// View runs fn in a read-only transaction.
func (n *Namespace) View(fn func(tx *NamespaceTx) error) error {
	if n.db != nil {
		return n.db.View(func(tx *bolt.Tx) error { return fn(&NamespaceTx{tx: kvTx{b: tx}, ns: n}) })
	}
	return n.eng.view(func(tx kvTx) error { return fn(&NamespaceTx{tx: tx, ns: n}) })
}

// Update runs fn in a read-write transaction.
func (n *Namespace) Update(fn func(tx *NamespaceTx) error) error {
	if n.db != nil {
		return n.db.Update(func(tx *bolt.Tx) error { return fn(&NamespaceTx{tx: kvTx{b: tx}, ns: n}) })
	}
	return n.eng.update(func(tx kvTx) error { return fn(&NamespaceTx{tx: tx, ns: n}) })
}

// NamespaceTx is a transaction limited to one namespace's buckets.
type NamespaceTx struct {
	tx kvTx
	ns *Namespace
}

// Bucket opens a bucket of the namespace by its name within it ("sessions"
// for local_sessions). Naming an undeclared bucket is a programming error
// and panics: the schema block is the only place buckets come from.
func (t *NamespaceTx) Bucket(name string) *Bucket {
	full, ok := t.ns.buckets[name]
	if !ok {
		panic(fmt.Sprintf("store: namespace %q declares no bucket %q", t.ns.name, name))
	}
	return &Bucket{b: t.tx.Bucket(full)}
}

// Bucket is an ordered key/value bucket inside a transaction. Slices it
// returns or passes to callbacks are valid only until the transaction ends;
// copy what must outlive it.
type Bucket struct{ b kvBucket }

// Get returns the value of key, or nil.
func (b *Bucket) Get(key []byte) []byte { return b.b.Get(key) }

// Put sets key to value (read-write transactions only).
func (b *Bucket) Put(key, value []byte) error { return b.b.Put(key, value) }

// Delete removes key; a missing key is not an error.
func (b *Bucket) Delete(key []byte) error { return b.b.Delete(key) }

// ForEach calls fn for every key in order; an error from fn stops the walk.
func (b *Bucket) ForEach(fn func(key, value []byte) error) error { return b.b.ForEach(fn) }

// DeletePrefix removes every key that starts with prefix.
func (b *Bucket) DeletePrefix(prefix []byte) error { return b.b.DeletePrefix(prefix) }

// Scan is the index walk every listing uses (walk.go): it visits the keys
// under prefix in key order, or in reverse when backward, starting just past
// after (exclusive; relative to the prefix, need not be a stored key; nil
// starts at the first or last key), until visit returns false. visit gets the
// key with the prefix stripped, and its value.
func (b *Bucket) Scan(prefix, after []byte, backward bool, visit func(key, value []byte) bool) {
	w := newWalk(b.b, prefix, after, backward)
	for k := w.first(); k != nil; k = w.next() {
		if !visit(k, w.value()) {
			return
		}
	}
}
