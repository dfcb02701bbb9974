package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Migration between the engines (`sandbox0d migrate`, issue 25 item 8): a
// single box grows into a cluster by copying its bbolt file into an empty
// etcd prefix, and a cluster shrinks back by copying the prefix into a new
// file. The copy is raw: keys and values byte for byte, so documents, index
// entries, the cursor secret (meta) and sealed secrets (ciphertext, opened
// by the same age identity afterwards) arrive as they were; nothing is
// decoded, re-sealed or re-encoded.

// SharedNamespaces names the namespaces the shared store holds in cluster
// mode: "" is the store's own buckets (meta, deployments, runs, intents, API
// keys, idempotency keys, the webhook outbox), NamespaceCatalog the agents,
// environments, vaults and credentials created through the API,
// NamespaceSessionIndex the cluster's session index. Every other namespace (NamespaceLocal: local
// sessions and their events) stays in each node's own bbolt file. Migrate
// copies exactly these; a namespace moved into the shared store is added
// here, and migrate copies it from then on.
var SharedNamespaces = []string{"", NamespaceCatalog, NamespaceSessionIndex}

// NamespaceLabel names a namespace in messages ("store" for the store's own).
func NamespaceLabel(ns string) string {
	if ns == "" {
		return "store"
	}
	return ns
}

// MigrateOptions tune Migrate.
type MigrateOptions struct {
	// Namespaces to copy; default SharedNamespaces.
	Namespaces []string
	// Progress, when set, is told each committed batch.
	Progress func(bucket string, keys int)
}

// NamespaceCount is what Migrate copied of one namespace, verified on both sides.
type NamespaceCount struct {
	Namespace string // "" for the store's own buckets
	Keys      int
	Buckets   []BucketCount
}

// BucketCount is one bucket's verified copy.
type BucketCount struct {
	Bucket   string
	Keys     int
	Sequence uint64
}

// ErrTargetNotEmpty is matched by Migrate's refusal of a target that holds data.
var ErrTargetNotEmpty = errors.New("migration target is not empty")

// The largest transaction the copy writes: etcd refuses requests over its
// --max-request-bytes (1.5 MiB by default), and the operation count is the
// target's max_txn_ops. A bbolt target takes bigger ones.
const (
	migrateEtcdTxnBytes = 1 << 20
	migrateBoltTxnBytes = 64 << 20
	migrateBoltTxnOps   = 10000
)

// Migrate copies the shared namespaces of src into dst, with src's meta
// bucket (schema version, cursor secret). dst must hold no data (its meta,
// written when it was opened, does not count): the copy never merges. The
// schema versions must match. Each batch is one transaction of dst within
// its limits; afterwards every bucket is read again on both sides and its
// key count, sequence and a SHA-256 of its keys and values compared.
// Nothing of src is changed.
func Migrate(src, dst *Store, opts MigrateOptions) ([]NamespaceCount, error) {
	if len(opts.Namespaces) == 0 {
		opts.Namespaces = SharedNamespaces
	}
	sv, err := schemaVersionOf(src)
	if err != nil {
		return nil, err
	}
	if sv != SchemaVersion {
		return nil, fmt.Errorf("the source has schema version %d and this binary writes %d: run the sandbox0d version that wrote it, or start this version once on the source so it upgrades it, then migrate", sv, SchemaVersion)
	}
	if what, err := dst.occupied(); err != nil {
		return nil, err
	} else if what != "" {
		return nil, fmt.Errorf("%w: %s holds %s; migrate copies into an empty target only, never merges (%s)", ErrTargetNotEmpty, dst.describe(), what, dst.emptyHint())
	}
	var meta [][2][]byte
	if err := src.eng.view(func(tx kvTx) error {
		meta = meta[:0]
		return tx.Bucket(bucketMeta.name).ForEach(func(k, v []byte) error {
			meta = append(meta, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
			return nil
		})
	}); err != nil {
		return nil, fmt.Errorf("read the source's meta: %w", err)
	}
	if err := dst.eng.update(func(tx kvTx) error {
		b := tx.Bucket(bucketMeta.name)
		for _, kv := range meta {
			if err := b.Put(kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("write the meta (schema version, cursor secret) to %s: %w", dst.describe(), err)
	}
	for _, kv := range meta {
		if bytes.Equal(kv[0], keyCursorSecret) {
			dst.cursorSecret = bytes.Clone(kv[1]) // cursors issued before work after
		}
	}
	return copyNamespaces(src, dst, opts)
}

// CopyNamespaces copies the buckets of the named namespaces of src into
// dst, where each of them must be empty, verified as Migrate verifies.
// migrate --to bbolt uses it to bring a node's own sessions (NamespaceLocal
// of its file) into the new single-box file next to the shared data.
func CopyNamespaces(src, dst *Store, opts MigrateOptions) ([]NamespaceCount, error) {
	for _, b := range bucketsOf(opts.Namespaces) {
		var n int
		if err := dst.eng.view(func(tx kvTx) error { n = tx.Bucket(b.name).KeyN(); return nil }); err != nil {
			return nil, err
		}
		if n > 0 {
			return nil, fmt.Errorf("%w: bucket %s of %s holds %d keys", ErrTargetNotEmpty, b.name, dst.describe(), n)
		}
	}
	return copyNamespaces(src, dst, opts)
}

// bucketsOf lists the schema's buckets of the namespaces, meta excluded
// (Migrate copies it first, on its own).
func bucketsOf(namespaces []string) []bucket {
	var out []bucket
	for _, b := range schema {
		if slices.Contains(namespaces, b.namespace) && !bytes.Equal(b.name, bucketMeta.name) {
			out = append(out, b)
		}
	}
	return out
}

func copyNamespaces(src, dst *Store, opts MigrateOptions) ([]NamespaceCount, error) {
	maxOps, maxBytes := migrateBoltTxnOps, migrateBoltTxnBytes
	if dst.etcd != nil {
		maxOps, maxBytes = dst.etcd.maxOps, migrateEtcdTxnBytes
	}
	buckets := bucketsOf(opts.Namespaces)
	for _, b := range buckets {
		if err := copyBucket(src, dst, b, maxOps, maxBytes, opts.Progress); err != nil {
			return nil, fmt.Errorf("copy bucket %s: %w", b.name, err)
		}
	}
	// Verify: both sides read again, bucket by bucket.
	var out []NamespaceCount
	for _, ns := range opts.Namespaces {
		nc := NamespaceCount{Namespace: ns}
		for _, b := range buckets {
			if b.namespace != ns {
				continue
			}
			want, err := digestBucket(src, b)
			if err != nil {
				return nil, fmt.Errorf("verify bucket %s (source): %w", b.name, err)
			}
			got, err := digestBucket(dst, b)
			if err != nil {
				return nil, fmt.Errorf("verify bucket %s (target): %w", b.name, err)
			}
			if got != want {
				return nil, fmt.Errorf("verify bucket %s: the source has %d keys (sequence %d), the target %d keys (sequence %d)%s; the target is incomplete: empty it and migrate again",
					b.name, want.keys, want.seq, got.keys, got.seq, map[bool]string{true: " with different contents"}[got.keys == want.keys && got.seq == want.seq])
			}
			nc.Keys += want.keys
			nc.Buckets = append(nc.Buckets, BucketCount{Bucket: string(b.name), Keys: want.keys, Sequence: want.seq})
		}
		out = append(out, nc)
	}
	return out, nil
}

// copyBucket streams one bucket: one read transaction of src (one snapshot
// on etcd), a write transaction of dst per batch.
func copyBucket(src, dst *Store, b bucket, maxOps, maxBytes int, progress func(string, int)) error {
	var batch [][2][]byte
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := dst.eng.update(func(tx kvTx) error {
			db := tx.Bucket(b.name)
			for _, kv := range batch {
				if err := db.Put(kv[0], kv[1]); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
		if progress != nil {
			progress(string(b.name), len(batch))
		}
		batch, size = batch[:0], 0
		return nil
	}
	var seq uint64
	err := src.eng.view(func(tx kvTx) error {
		batch, size = batch[:0], 0
		sb := tx.Bucket(b.name)
		seq = sb.Sequence()
		c := sb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			n := len(k) + len(v) + len(b.name) + 64 // key prefix and framing, roughly
			if len(batch) > 0 && (len(batch)+1 > maxOps || size+n > maxBytes) {
				if err := flush(); err != nil {
					return err
				}
			}
			batch = append(batch, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
			size += n
		}
		if tx.e != nil && tx.e.err != nil {
			return tx.e.err
		}
		return flush()
	})
	if err != nil || seq == 0 {
		return err
	}
	return dst.eng.update(func(tx kvTx) error { return tx.Bucket(b.name).SetSequence(seq) })
}

type bucketDigest struct {
	keys int
	seq  uint64
	sum  [32]byte
}

func digestBucket(s *Store, b bucket) (bucketDigest, error) {
	var d bucketDigest
	err := s.eng.view(func(tx kvTx) error {
		h := sha256.New()
		d = bucketDigest{}
		sb := tx.Bucket(b.name)
		d.seq = sb.Sequence()
		c := sb.Cursor()
		var n [8]byte
		for k, v := c.First(); k != nil; k, v = c.Next() {
			d.keys++
			// Lengths first, so (k, v) pairs cannot run into each other.
			h.Write(u64into(n[:], uint64(len(k))))
			h.Write(k)
			h.Write(u64into(n[:], uint64(len(v))))
			h.Write(v)
		}
		copy(d.sum[:], h.Sum(nil))
		if tx.e != nil && tx.e.err != nil {
			return tx.e.err
		}
		return nil
	})
	return d, err
}

func u64into(b []byte, v uint64) []byte {
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	return b
}

func schemaVersionOf(s *Store) (uint64, error) {
	var v uint64
	err := s.eng.view(func(tx kvTx) error {
		v = readU64(tx.Bucket(bucketMeta.name).Get(keySchemaVersion))
		return nil
	})
	if err == nil && v == 0 {
		err = fmt.Errorf("%s has no schema version in its meta: not a sandbox0d store", s.describe())
	}
	return v, err
}

// describe names the store in messages.
func (s *Store) describe() string {
	if s.etcd != nil {
		return fmt.Sprintf("etcd prefix %s (store.etcd.endpoints %s)", s.etcd.prefix, strings.Join(s.etcd.endpoints, ","))
	}
	return "bbolt file " + s.path
}

func (s *Store) emptyHint() string {
	if s.etcd != nil {
		return fmt.Sprintf("choose another store.etcd.prefix, or, if what is there may go, stop every node on it and run: etcdctl del --prefix %s", s.etcd.prefix)
	}
	return "name a file that does not exist yet"
}

// occupied says what data the store holds ("" for none). Meta does not
// count: opening a store writes it. On etcd every key under the prefix
// counts, live nodes' keys included.
func (s *Store) occupied() (string, error) {
	if s.etcd != nil {
		e := s.etcd
		ctx, cancel := e.ctx()
		defer cancel()
		metaPrefix := e.prefix + "b/" + string(bucketMeta.name) + "/"
		resp, err := e.cli.Txn(ctx).Then(
			clientv3.OpGet(e.prefix, clientv3.WithPrefix(), clientv3.WithCountOnly()),
			clientv3.OpGet(metaPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly()),
		).Commit()
		if err != nil {
			return "", e.unavailable(err)
		}
		all, meta := resp.Responses[0].GetResponseRange().Count, resp.Responses[1].GetResponseRange().Count
		if all == meta {
			return "", nil
		}
		// Name one of them: among the first meta+1 keys one is not meta.
		keys, err := e.cli.Get(ctx, e.prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(meta+1))
		if err != nil {
			return "", e.unavailable(err)
		}
		example := ""
		for _, kv := range keys.Kvs {
			if !strings.HasPrefix(string(kv.Key), metaPrefix) {
				example = string(kv.Key)
				break
			}
		}
		return fmt.Sprintf("%d keys (e.g. %s)", all-meta, example), nil
	}
	what := ""
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if bytes.Equal(name, bucketMeta.name) {
				return nil
			}
			if n := b.Stats().KeyN; n > 0 || b.Sequence() > 0 {
				what = fmt.Sprintf("%d keys in bucket %s", n, name)
				return errStopWalk
			}
			return nil
		})
	})
	if errors.Is(err, errStopWalk) {
		err = nil
	}
	return what, err
}

var errStopWalk = errors.New("stop")

// LiveNodes names the nodes whose lease still holds their key on the etcd
// prefix (nil on bbolt): migrate refuses to copy out of a prefix that nodes
// still write to.
func (s *Store) LiveNodes() ([]string, error) {
	if s.etcd == nil {
		return nil, nil
	}
	e := s.etcd
	ctx, cancel := context.WithTimeout(context.Background(), e.reqTimeout)
	defer cancel()
	p := e.prefix + "nodes/"
	resp, err := e.cli.Get(ctx, p, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, e.unavailable(err)
	}
	var out []string
	for _, kv := range resp.Kvs {
		out = append(out, strings.TrimPrefix(string(kv.Key), p))
	}
	return out, nil
}

// NodeNamespaces names the declared namespaces that are not shared: in
// cluster mode they live in each node's own file.
func NodeNamespaces() []string {
	var out []string
	for _, b := range schema {
		if b.namespace != "" && !slices.Contains(SharedNamespaces, b.namespace) && !slices.Contains(out, b.namespace) {
			out = append(out, b.namespace)
		}
	}
	return out
}
