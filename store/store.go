// Package store owns the bbolt file: bucket layout, index maintenance, the
// schema version, cursors over ordered indexes, and hot backups. It stores
// deployment and run documents as opaque bytes handed to it by the domain
// layer together with the few fields its indexes need; it must not know the
// rules of deployments, schedules or secrets.
package store

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// FileName is the database file inside the data directory.
const FileName = "sandbox0d.db"

// ErrLocked is returned by Open when another process holds the file.
var ErrLocked = errors.New("data file is locked by another process")

// Options tune Open.
type Options struct {
	// LockTimeout bounds the wait for the file lock so a second daemon on the
	// same data dir fails fast instead of hanging. Default 2s.
	LockTimeout time.Duration
	// NoSync skips fsync; only for benchmarks and tests.
	NoSync bool
	// MaxBatchDelay is how long Batch waits for company before committing
	// (default bbolt's 10ms). Tests that fire sequentially lower it.
	MaxBatchDelay time.Duration
	// MaxBatchSize commits a batch as soon as this many calls joined it
	// (default bbolt's 1000). Set it to the number of concurrent writers
	// (the scheduler's workers): a burst then commits the moment every
	// worker has joined instead of always waiting MaxBatchDelay.
	MaxBatchSize int
	// AllocSize is how far bbolt grows the file past what it needs each time
	// it fills (default bbolt's 16 MiB). Tests of the file's size set it to
	// a few pages, so that growth shows without writing tens of megabytes.
	AllocSize int
	// ReadOnly opens a file for inspection (a backup, the file of a stopped
	// daemon): it shares the lock with other readers, writes nothing, and
	// fails if one of the store's own buckets is missing.
	ReadOnly bool
}

// Store is an open database.
type Store struct {
	eng          engine
	db           *bolt.DB // the bbolt engine's file; nil on etcd
	etcd         *etcdEngine
	path         string
	cursorSecret []byte
	group        groupCommitter
}

// initialMmapSize is the address space mapped for the file at open (see Open).
const initialMmapSize = 1 << 30

// Open opens (creating if needed) the database at path.
func Open(path string, opts Options) (*Store, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 2 * time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	// InitialMmapSize reserves address space (not memory) up front: bbolt
	// otherwise remaps the file each time it outgrows the mapping, and a
	// remap waits for every open read transaction while it blocks new ones,
	// which stalled API reads during a burst of fires growing the file.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, NoSync: opts.NoSync,
		FreelistType: bolt.FreelistMapType, ReadOnly: opts.ReadOnly, InitialMmapSize: initialMmapSize})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("open %s: %w (is another sandbox0d running on this data directory?)", path, ErrLocked)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if opts.MaxBatchDelay > 0 {
		db.MaxBatchDelay = opts.MaxBatchDelay
	}
	if opts.MaxBatchSize > 0 {
		db.MaxBatchSize = opts.MaxBatchSize
	}
	if opts.AllocSize > 0 {
		db.AllocSize = opts.AllocSize
	}
	s := &Store{eng: boltEngine{db}, db: db, path: path}
	initialize := s.init
	if opts.ReadOnly {
		initialize = s.checkReadOnly
	}
	if err := initialize(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

// init creates what is missing. A file that already has everything is only
// read, so a daemon that refuses to start (wrong identity, newer schema)
// leaves the file byte-for-byte untouched.
func (s *Store) init() error {
	complete := false
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, b := range schema {
			if tx.Bucket(b.name) == nil {
				return nil
			}
		}
		meta := tx.Bucket(bucketMeta.name)
		v, secret := meta.Get(keySchemaVersion), meta.Get(keyCursorSecret)
		if v == nil || secret == nil {
			return nil
		}
		if got := readU64(v); got > SchemaVersion {
			return fmt.Errorf("schema version %d is newer than this binary supports (%d): upgrade sandbox0d", got, SchemaVersion)
		}
		s.cursorSecret = append([]byte(nil), secret...)
		complete = true
		return nil
	})
	if err != nil || complete {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range schema {
			if _, err := tx.CreateBucketIfNotExists(b.name); err != nil {
				return fmt.Errorf("create bucket %s: %w", b.name, err)
			}
		}
		meta := tx.Bucket(bucketMeta.name)
		return s.initMeta(meta.Get, meta.Put)
	})
}

// checkReadOnly is init for a read-only open: the store's own buckets must
// be there and the schema version understood.
func (s *Store) checkReadOnly() error {
	return s.db.View(func(tx *bolt.Tx) error {
		for _, b := range schema {
			if b.namespace == "" && tx.Bucket(b.name) == nil {
				return fmt.Errorf("bucket %s missing", b.name)
			}
		}
		if got := readU64(tx.Bucket(bucketMeta.name).Get(keySchemaVersion)); got > SchemaVersion {
			return fmt.Errorf("schema version %d is newer than this binary supports (%d): upgrade sandbox0d", got, SchemaVersion)
		}
		s.cursorSecret = append([]byte(nil), tx.Bucket(bucketMeta.name).Get(keyCursorSecret)...)
		return nil
	})
}

// LastTxID is the id of the newest committed write transaction; tests use
// it to assert that a pass committed nothing.
func (s *Store) LastTxID() int {
	if s.db == nil {
		return 0
	}
	var id int
	_ = s.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil })
	return id
}

// Path is the database file path ("" on etcd).
func (s *Store) Path() string { return s.path }

// Engine names the engine: "bbolt" or "etcd".
func (s *Store) Engine() string { return s.eng.kind() }

// Close closes the database.
func (s *Store) Close() error { return s.eng.close() }

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(tx *Tx) error) error {
	if s.db != nil {
		// bbolt directly, not through the engine interface: a closure
		// handed through an interface escapes (an allocation per call).
		return s.db.View(func(btx *bolt.Tx) error { return fn(&Tx{tx: kvTx{b: btx}}) })
	}
	return s.eng.view(func(t kvTx) error { return fn(&Tx{tx: t}) })
}

// Update runs fn in a read-write transaction. On etcd fn runs again when
// another writer changed what it read, so it must be idempotent there too.
func (s *Store) Update(fn func(tx *Tx) error) error {
	if s.db != nil {
		return s.db.Update(func(btx *bolt.Tx) error { return fn(&Tx{tx: kvTx{b: btx}}) })
	}
	return s.eng.update(func(t kvTx) error { return fn(&Tx{tx: t}) })
}

// Batch runs fn in a read-write transaction that may be coalesced with other
// concurrent Batch calls, so a burst of run records shares fsyncs. fn must be
// idempotent: bbolt may run it more than once. Side effects belong after the
// call returns.
func (s *Store) Batch(fn func(tx *Tx) error) error {
	if s.etcd != nil {
		// etcd writes share a Txn through the group committer.
		return s.Write(fn)
	}
	return s.db.Batch(func(btx *bolt.Tx) error { return fn(&Tx{tx: kvTx{b: btx}}) })
}

// errNotBolt is what the file-level operations answer on etcd.
var errNotBolt = errors.New("this operation works on the bbolt file only; with store.type etcd use etcdctl (snapshot save, defrag, endpoint health)")

// WriteBackup streams a consistent copy of the database to w.
func (s *Store) WriteBackup(w io.Writer) (int64, error) {
	if s.db == nil {
		return 0, errNotBolt
	}
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// Check runs bbolt's consistency check and returns every problem found.
func (s *Store) Check() []error {
	if s.db == nil {
		return nil
	}
	var errs []error
	_ = s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return nil
	})
	return errs
}

// Ping is a cheap liveness probe of the file (a read transaction).
func (s *Store) Ping() error {
	if s.etcd != nil {
		return s.etcd.ping()
	}
	return s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta.name) == nil {
			return errors.New("meta bucket missing")
		}
		return nil
	})
}

// Tx is a transaction with typed index maintenance.
type Tx struct{ tx kvTx }

func (tx *Tx) bucket(b bucket) kvBucket { return tx.tx.Bucket(b.name) }

// initMeta writes the schema version and the cursor secret where they are
// missing, and refuses a schema newer than this binary, in one write of
// either engine (bbolt's first open; on etcd whichever node comes first).
func (s *Store) initMeta(get func(k []byte) []byte, put func(k, v []byte) error) error {
	if v := get(keySchemaVersion); v == nil {
		if err := put(keySchemaVersion, u64(SchemaVersion)); err != nil {
			return err
		}
	} else if got := readU64(v); got > SchemaVersion {
		return fmt.Errorf("schema version %d is newer than this binary supports (%d): upgrade sandbox0d", got, SchemaVersion)
	}
	secret := get(keyCursorSecret)
	if secret == nil {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return err
		}
		if err := put(keyCursorSecret, secret); err != nil {
			return err
		}
	}
	s.cursorSecret = append([]byte(nil), secret...)
	return nil
}
