package store

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// The bbolt engine: a thin adapter. Its wrappers hold one pointer each, so
// converting them to the interfaces allocates nothing and the embedded
// default keeps its speed (see the benchmark note in the commit that added
// the seam).

type boltEngine struct{ db *bolt.DB }

func (e boltEngine) view(fn func(kvTx) error) error {
	return e.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

func (e boltEngine) update(fn func(kvTx) error) error {
	return e.db.Update(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

func (e boltEngine) batch(fn func(kvTx) error) error {
	return e.db.Batch(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

func (e boltEngine) close() error { return e.db.Close() }
func (e boltEngine) kind() string { return "bbolt" }

type boltTx struct{ tx *bolt.Tx }

func (t boltTx) Bucket(name []byte) kvBucket { return boltBucket{t.tx.Bucket(name)} }

// RequireFence holds trivially: one process owns a bbolt file (its lock),
// so there is no other leader to fence out.
func (t boltTx) RequireFence(Fence) error { return nil }

type boltBucket struct{ b *bolt.Bucket }

func (b boltBucket) Get(key []byte) []byte                    { return b.b.Get(key) }
func (b boltBucket) Put(key, value []byte) error              { return b.b.Put(key, value) }
func (b boltBucket) Delete(key []byte) error                  { return b.b.Delete(key) }
func (b boltBucket) ForEach(fn func(k, v []byte) error) error { return b.b.ForEach(fn) }
func (b boltBucket) Cursor() kvCursor                         { return boltCursor{b.b.Cursor()} }
func (b boltBucket) KeyN() int                                { return b.b.Stats().KeyN }
func (b boltBucket) NextSequence() (uint64, error)            { return b.b.NextSequence() }

func (b boltBucket) DeletePrefix(prefix []byte) error {
	c := b.b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

type boltCursor struct{ c *bolt.Cursor }

func (c boltCursor) First() ([]byte, []byte)        { return c.c.First() }
func (c boltCursor) Last() ([]byte, []byte)         { return c.c.Last() }
func (c boltCursor) Next() ([]byte, []byte)         { return c.c.Next() }
func (c boltCursor) Prev() ([]byte, []byte)         { return c.c.Prev() }
func (c boltCursor) Seek(k []byte) ([]byte, []byte) { return c.c.Seek(k) }
