package store

import (
	"bytes"
	"encoding/binary"
	"sort"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdTx is one optimistic transaction (see engine_etcd.go).
type etcdTx struct {
	e        *etcdEngine
	writable bool
	rev      int64 // the snapshot's revision; 0 until the first read
	err      error // the first failed etcd call: the closure's outcome

	cache  map[string]*mvccpb.KeyValue // point reads at rev (nil value: absent)
	reads  map[string]int64            // write tx: key → mod revision read (0: absent)
	guards []keyRange                  // write tx: scanned ranges
	fences []Fence

	writes      map[string]etcdWrite // buffered puts and deletes by full key
	delPrefixes []string             // buffered DeletePrefix calls (full keys)
}

type etcdWrite struct {
	val []byte
	del bool
}

type keyRange struct{ start, end string }

func (e *etcdEngine) newTx(writable bool) *etcdTx {
	return &etcdTx{e: e, writable: writable}
}

// fail records the first failure; later reads answer nothing and the
// closure's result is replaced by it.
func (t *etcdTx) fail(err error) {
	if t.err == nil {
		t.err = t.e.unavailable(err)
	}
}

func (t *etcdTx) pin(rev int64) {
	if t.rev == 0 {
		t.rev = rev
	}
}

// readOpts pins later reads to the snapshot's revision.
func (t *etcdTx) readOpts(opts ...clientv3.OpOption) []clientv3.OpOption {
	if t.rev != 0 {
		opts = append(opts, clientv3.WithRev(t.rev))
	}
	return opts
}

// remote reads key at the snapshot (cached), ignoring buffered writes.
func (t *etcdTx) remote(key string) *mvccpb.KeyValue {
	if kv, ok := t.cache[key]; ok {
		return kv
	}
	if t.err != nil {
		return nil
	}
	ctx, cancel := t.e.ctx()
	resp, err := t.e.cli.Get(ctx, key, t.readOpts()...)
	cancel()
	if err != nil {
		t.fail(err)
		return nil
	}
	t.pin(resp.Header.Revision)
	var kv *mvccpb.KeyValue
	if len(resp.Kvs) > 0 {
		kv = resp.Kvs[0]
	}
	if t.cache == nil {
		t.cache = map[string]*mvccpb.KeyValue{}
	}
	t.cache[key] = kv
	return kv
}

func (t *etcdTx) deletedByPrefix(key string) bool {
	for _, p := range t.delPrefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

func (t *etcdTx) get(key string) []byte {
	if w, ok := t.writes[key]; ok {
		if w.del || len(w.val) == 0 {
			return nil
		}
		return w.val
	}
	if t.deletedByPrefix(key) {
		return nil
	}
	kv := t.remote(key)
	if t.writable && t.err == nil {
		if t.reads == nil {
			t.reads = map[string]int64{}
		}
		if _, seen := t.reads[key]; !seen {
			var rev int64
			if kv != nil {
				rev = kv.ModRevision
			}
			t.reads[key] = rev
		}
	}
	if kv == nil || len(kv.Value) == 0 {
		// As bbolt: an empty value read from a committed transaction is nil.
		return nil
	}
	return kv.Value
}

func (t *etcdTx) put(key string, val []byte) {
	if t.writes == nil {
		t.writes = map[string]etcdWrite{}
	}
	t.writes[key] = etcdWrite{val: append([]byte{}, val...)}
}

func (t *etcdTx) del(key string) {
	if t.writes == nil {
		t.writes = map[string]etcdWrite{}
	}
	t.writes[key] = etcdWrite{del: true}
}

func (t *etcdTx) deletePrefix(prefix string) {
	for k := range t.writes {
		if strings.HasPrefix(k, prefix) {
			delete(t.writes, k)
		}
	}
	t.delPrefixes = append(t.delPrefixes, prefix)
}

func (t *etcdTx) guard(start, end string) {
	if t.writable {
		t.guards = append(t.guards, keyRange{start, end})
	}
}

// hidden: a key read from etcd that the transaction's own writes replace
// or removed.
func (t *etcdTx) hidden(key string) bool {
	if _, ok := t.writes[key]; ok {
		return true
	}
	return t.deletedByPrefix(key)
}

// RequireFence reads the fence key at the snapshot and adds its compare to
// the commit.
func (t *etcdTx) RequireFence(f Fence) error {
	kv := t.remote(f.Key)
	if t.err != nil {
		return t.err
	}
	if kv == nil || kv.CreateRevision != f.Rev {
		return ErrFenced
	}
	for _, g := range t.fences {
		if g == f {
			return nil // the fires of a group share one compare
		}
	}
	t.fences = append(t.fences, f)
	return nil
}

func (t *etcdTx) Bucket(name []byte) *etcdBucket {
	base := t.e.prefix + "b/" + string(name) + "/"
	return &etcdBucket{t: t, name: string(name), lo: base, hi: base[:len(base)-1] + "0"}
}

// commit sends the buffered writes as one Txn guarded by what was read.
func (t *etcdTx) commit() error {
	if len(t.writes) == 0 && len(t.delPrefixes) == 0 {
		return nil // a read-write closure that wrote nothing commits nothing
	}
	cmps := make([]clientv3.Cmp, 0, len(t.reads)+len(t.guards)+len(t.fences))
	for k, rev := range t.reads {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", rev))
	}
	for _, g := range t.guards {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(g.start).WithRange(g.end), "<", t.rev+1))
	}
	for _, f := range t.fences {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(f.Key), "=", f.Rev))
	}
	ops, err := t.writeOps()
	if err != nil {
		return err
	}
	if len(cmps) > t.e.maxOps || len(ops) > t.e.maxOps {
		return errTxnTooLarge
	}
	ctx, cancel := t.e.ctx()
	defer cancel()
	resp, err := t.e.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		if isTooLarge(err) {
			return errTxnTooLarge
		}
		return t.e.unavailable(err)
	}
	if !resp.Succeeded {
		return errConflict
	}
	return nil
}

// writeOps turns the buffer into Txn operations, in key order (a stable
// request for the same writes). etcd refuses a Txn that puts a key inside a
// range it also deletes; a prefix delete overlapping a put of the same
// transaction becomes point deletes of the keys under it at the snapshot
// (guarded against keys appearing there meanwhile).
func (t *etcdTx) writeOps() ([]clientv3.Op, error) {
	keys := make([]string, 0, len(t.writes))
	for k := range t.writes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ops []clientv3.Op
	for _, p := range t.delPrefixes {
		overlaps := false
		for _, k := range keys {
			if strings.HasPrefix(k, p) && !t.writes[k].del {
				overlaps = true
				break
			}
		}
		if !overlaps {
			ops = append(ops, clientv3.OpDelete(p, clientv3.WithPrefix()))
			continue
		}
		ctx, cancel := t.e.ctx()
		resp, err := t.e.cli.Get(ctx, p, t.readOpts(clientv3.WithPrefix(), clientv3.WithKeysOnly())...)
		cancel()
		if err != nil {
			return nil, t.e.unavailable(err)
		}
		t.pin(resp.Header.Revision)
		t.guards = append(t.guards, keyRange{p, clientv3.GetPrefixRangeEnd(p)})
		for _, kv := range resp.Kvs {
			if _, buffered := t.writes[string(kv.Key)]; !buffered {
				ops = append(ops, clientv3.OpDelete(string(kv.Key)))
			}
		}
	}
	for _, k := range keys {
		w := t.writes[k]
		if w.del {
			if !t.deletedByPrefix(k) { // else the range delete covers it
				ops = append(ops, clientv3.OpDelete(k))
			}
			continue
		}
		ops = append(ops, clientv3.OpPut(k, string(w.val)))
	}
	return ops, nil
}

// etcdBucket is a bucket's key range inside a transaction.
type etcdBucket struct {
	t      *etcdTx
	name   string
	lo, hi string // [lo, hi): every key of the bucket
}

func (b *etcdBucket) Get(key []byte) []byte { return b.t.get(b.lo + string(key)) }

func (b *etcdBucket) Put(key, value []byte) error {
	if !b.t.writable {
		return errReadOnlyTx
	}
	b.t.put(b.lo+string(key), value)
	return nil
}

func (b *etcdBucket) Delete(key []byte) error {
	if !b.t.writable {
		return errReadOnlyTx
	}
	b.t.del(b.lo + string(key))
	return nil
}

func (b *etcdBucket) DeletePrefix(prefix []byte) error {
	if !b.t.writable {
		return errReadOnlyTx
	}
	b.t.deletePrefix(b.lo + string(prefix))
	return nil
}

func (b *etcdBucket) ForEach(fn func(k, v []byte) error) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return b.t.err
}

func (b *etcdBucket) Cursor() *etcdCursor { return &etcdCursor{b: b} }

// KeyN counts at the snapshot; inside a write with buffered changes to the
// bucket it counts by walking, which sees them.
func (b *etcdBucket) KeyN() int {
	t := b.t
	dirty := false
	for k := range t.writes {
		if k >= b.lo && k < b.hi {
			dirty = true
			break
		}
	}
	for _, p := range t.delPrefixes {
		if strings.HasPrefix(p, b.lo) {
			dirty = true
		}
	}
	if dirty {
		n := 0
		_ = b.ForEach(func(_, _ []byte) error { n++; return nil })
		return n
	}
	if t.err != nil {
		return 0
	}
	ctx, cancel := t.e.ctx()
	resp, err := t.e.cli.Get(ctx, b.lo, t.readOpts(clientv3.WithRange(b.hi), clientv3.WithCountOnly())...)
	cancel()
	if err != nil {
		t.fail(err)
		return 0
	}
	t.pin(resp.Header.Revision)
	t.guard(b.lo, b.hi)
	return int(resp.Count)
}

// NextSequence keeps the bucket's sequence in one key, read and written in
// the transaction: concurrent appenders conflict and one reruns, so numbers
// are never handed out twice.
func (b *etcdBucket) NextSequence() (uint64, error) {
	if !b.t.writable {
		return 0, errReadOnlyTx
	}
	key := b.t.e.prefix + "q/" + b.name
	seq := readU64(b.t.get(key)) + 1
	if b.t.err != nil {
		return 0, b.t.err
	}
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, seq)
	b.t.put(key, v)
	return seq, nil
}

// Sequence reads the bucket's sequence key.
func (b *etcdBucket) Sequence() uint64 { return readU64(b.t.get(b.t.e.prefix + "q/" + b.name)) }

// SetSequence writes the bucket's sequence key.
func (b *etcdBucket) SetSequence(n uint64) error {
	if !b.t.writable {
		return errReadOnlyTx
	}
	b.t.put(b.t.e.prefix+"q/"+b.name, u64(n))
	return nil
}

var errReadOnlyTx = bytesError("store: write in a read-only transaction")

type bytesError string

func (e bytesError) Error() string { return string(e) }

// bufferedNext is the first key of the transaction's own puts in the
// bucket past from (at from when incl), walking forward or backward.
func (b *etcdBucket) bufferedNext(from string, incl, fwd bool) (string, []byte, bool) {
	var best string
	found := false
	for k, w := range b.t.writes {
		if w.del || k < b.lo || k >= b.hi {
			continue
		}
		c := strings.Compare(k, from)
		if fwd && (c > 0 || incl && c == 0) || !fwd && (c < 0 || incl && c == 0) {
			if !found || fwd && k < best || !fwd && k > best {
				best, found = k, true
			}
		}
	}
	if !found {
		return "", nil, false
	}
	return best, b.t.writes[best].val, true
}

var _ = bytes.Compare
