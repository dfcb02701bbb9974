package store

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// The bbolt engine: the file itself; kvTx, kvBucket and kvCursor
// (engine.go) call bbolt directly.

type boltEngine struct{ db *bolt.DB }

func (e boltEngine) view(fn func(kvTx) error) error {
	return e.db.View(func(tx *bolt.Tx) error { return fn(kvTx{b: tx}) })
}

func (e boltEngine) update(fn func(kvTx) error) error {
	return e.db.Update(func(tx *bolt.Tx) error { return fn(kvTx{b: tx}) })
}

func (e boltEngine) close() error { return e.db.Close() }
func (e boltEngine) kind() string { return "bbolt" }

func boltDeletePrefix(b *bolt.Bucket, prefix []byte) error {
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}
