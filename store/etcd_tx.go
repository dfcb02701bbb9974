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

	// assumed counts the answers given without asking etcd: a key taken
	// to be absent (GetLikelyAbsent) and a fence taken to hold. Only the
	// commit's compares prove them, so an outcome that commits no writes
	// (an error, a closure that wrote nothing) is checked before it is
	// believed (validate).
	assumed int
	// journal undoes a group member's changes to reads and writes (mark,
	// rollback), so a group that outgrows a Txn, or one of whose members
	// fails, commits the others without running them again.
	journal []etcdUndo
	// seed, after a refused commit: every compared key as the refusal's
	// Else branch read it, at seedRev. The rerun starts from it, so only
	// what changed is new to the closures, and nothing is read twice.
	seed    map[string]*mvccpb.KeyValue
	seedRev int64
}

// etcdUndo is one journal entry: a key added to the read set, or a
// buffered write (prev, or none when !had) replaced.
type etcdUndo struct {
	read bool
	key  string
	prev etcdWrite
	had  bool
}

// txMark is a point a transaction can roll back to.
type txMark struct {
	journal, guards, fences, delPrefixes, assumed int
}

type etcdWrite struct {
	val []byte
	del bool
}

type keyRange struct{ start, end string }

func (e *etcdEngine) newTx(writable bool) *etcdTx {
	return &etcdTx{e: e, writable: writable}
}

// rerun is a fresh transaction after t was refused: it starts at the
// refusal's revision with every key t compared already read.
func (t *etcdTx) rerun() *etcdTx {
	n := t.e.newTx(t.writable)
	if t.seed != nil {
		n.rev, n.cache = t.seedRev, t.seed
	}
	return n
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
	var kv *mvccpb.KeyValue
	if t.rev == 0 {
		// The first read: grouped with other transactions' (etcd_reads.go).
		var rev int64
		var err error
		if kv, rev, err = t.e.firstRead(key); err != nil {
			t.fail(err)
			return nil
		}
		t.pin(rev)
	} else {
		ctx, cancel := t.e.ctx()
		t.e.gets.Add(1)
		resp, err := t.e.cli.Get(ctx, key, t.readOpts()...)
		cancel()
		if err != nil {
			t.fail(err)
			return nil
		}
		t.pin(resp.Header.Revision)
		if len(resp.Kvs) > 0 {
			kv = resp.Kvs[0]
		}
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
			t.journal = append(t.journal, etcdUndo{read: true, key: key})
		}
	}
	if kv == nil || len(kv.Value) == 0 {
		// As bbolt: an empty value read from a committed transaction is nil.
		return nil
	}
	return kv.Value
}

func (t *etcdTx) put(key string, val []byte) {
	t.setWrite(key, etcdWrite{val: append([]byte{}, val...)})
}

func (t *etcdTx) del(key string) { t.setWrite(key, etcdWrite{del: true}) }

func (t *etcdTx) setWrite(key string, w etcdWrite) {
	if t.writes == nil {
		t.writes = map[string]etcdWrite{}
	}
	prev, had := t.writes[key]
	t.journal = append(t.journal, etcdUndo{key: key, prev: prev, had: had})
	t.writes[key] = w
}

func (t *etcdTx) deletePrefix(prefix string) {
	for k, w := range t.writes {
		if strings.HasPrefix(k, prefix) {
			t.journal = append(t.journal, etcdUndo{key: k, prev: w, had: true})
			delete(t.writes, k)
		}
	}
	t.delPrefixes = append(t.delPrefixes, prefix)
}

// mark is the transaction's state now, for rollback.
func (t *etcdTx) mark() txMark {
	return txMark{journal: len(t.journal), guards: len(t.guards), fences: len(t.fences),
		delPrefixes: len(t.delPrefixes), assumed: t.assumed}
}

// rollback undoes the writes made since m, and the reads too when reads is
// set. Point reads stay cached: the snapshot does not change.
func (t *etcdTx) rollback(m txMark, reads bool) {
	for i := len(t.journal) - 1; i >= m.journal; i-- {
		u := t.journal[i]
		switch {
		case u.read:
			if reads {
				delete(t.reads, u.key)
			}
		case u.had:
			t.writes[u.key] = u.prev
		default:
			delete(t.writes, u.key)
		}
	}
	if reads {
		t.journal = t.journal[:m.journal]
		t.guards = t.guards[:m.guards]
		t.fences = t.fences[:m.fences]
		t.assumed = m.assumed
	} else {
		// The reads stay in the set (the commit proves them); only the
		// write entries leave the journal.
		kept := t.journal[:m.journal]
		for _, u := range t.journal[m.journal:] {
			if u.read {
				kept = append(kept, u)
			}
		}
		t.journal = kept
	}
	t.delPrefixes = t.delPrefixes[:m.delPrefixes]
}

// overLimit reports whether the commit would need more compares, or more
// writes, than one Txn may carry. A prefix delete that has to become point
// deletes may still need more; the commit then says errTxnTooLarge.
func (t *etcdTx) overLimit() bool {
	return len(t.reads)+len(t.guards)+len(t.fences) > t.e.maxOps || len(t.writes)+len(t.delPrefixes) > t.e.maxOps
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

// RequireFence adds the fence's compare to the commit. A leader's fence
// almost always holds, so a write transaction takes it as holding without
// reading it (a round trip per group saved) and the commit's compare
// decides; after a refusal the fence key is known (the seed) and a lost
// fence answers ErrFenced at once. A read-only transaction reads it.
func (t *etcdTx) RequireFence(f Fence) error {
	for _, g := range t.fences {
		if g == f {
			return nil // the fires of a group share one compare
		}
	}
	if kv, known := t.cache[f.Key]; known || !t.writable {
		if !known {
			kv = t.remote(f.Key)
		}
		if t.err != nil {
			return t.err
		}
		if kv == nil || kv.CreateRevision != f.Rev {
			return ErrFenced
		}
	} else {
		t.assumed++
	}
	t.fences = append(t.fences, f)
	return nil
}

// getLikelyAbsent is get for a key that is almost never present (a fire
// claim): a write transaction takes it as absent without asking etcd, and
// the commit compares its create revision with 0 (one compare, no round
// trip). When it was present the commit is refused, the refusal reads the
// key (the seed) and the rerun sees its value.
func (t *etcdTx) getLikelyAbsent(key string) []byte {
	if !t.writable || t.err != nil {
		return t.get(key)
	}
	if _, ok := t.writes[key]; ok {
		return t.get(key)
	}
	if _, ok := t.cache[key]; ok || t.deletedByPrefix(key) {
		return t.get(key)
	}
	if _, seen := t.reads[key]; seen {
		return nil // assumed before, by this transaction
	}
	if t.reads == nil {
		t.reads = map[string]int64{}
	}
	t.reads[key] = 0 // ModRevision == 0: absent, as CreateRevision == 0
	t.journal = append(t.journal, etcdUndo{read: true, key: key})
	t.assumed++
	return nil
}

func (t *etcdTx) Bucket(name []byte) *etcdBucket {
	base := t.e.prefix + "b/" + string(name) + "/"
	return &etcdBucket{t: t, name: string(name), lo: base, hi: base[:len(base)-1] + "0"}
}

// commit sends the buffered writes as one Txn guarded by what was read.
// A transaction that wrote nothing commits nothing, unless it assumed
// something: then its compares are checked (validate).
func (t *etcdTx) commit() error {
	if len(t.writes) == 0 && len(t.delPrefixes) == 0 {
		return t.validate()
	}
	ops, err := t.writeOps()
	if err != nil {
		return err
	}
	return t.send(ops)
}

// validate proves what the transaction assumed (an outcome with no
// commit to prove it: an error, or nothing written), with a Txn of
// compares and no writes, which etcd serves as a linearizable read.
// errConflict means an assumption was wrong; the rerun starts from the seed.
func (t *etcdTx) validate() error {
	if t.assumed == 0 {
		return nil
	}
	return t.send(nil)
}

// send commits ops if every compare holds. When one does not, the Else
// branch reads every key compared (etcd counts each branch against
// --max-txn-ops on its own, so as many reads as compares fit) and the
// answer seeds the rerun.
func (t *etcdTx) send(ops []clientv3.Op) error {
	cmps := make([]clientv3.Cmp, 0, len(t.reads)+len(t.guards)+len(t.fences))
	elseOps := make([]clientv3.Op, 0, len(t.reads)+len(t.fences))
	keys := make([]string, 0, len(t.reads)+len(t.fences))
	for k, rev := range t.reads {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", rev))
		keys = append(keys, k)
	}
	for _, g := range t.guards {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(g.start).WithRange(g.end), "<", t.rev+1))
	}
	for _, f := range t.fences {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(f.Key), "=", f.Rev))
		if _, dup := t.reads[f.Key]; !dup {
			keys = append(keys, f.Key)
		}
	}
	for _, k := range keys {
		elseOps = append(elseOps, clientv3.OpGet(k))
	}
	if len(cmps) > t.e.maxOps || len(ops) > t.e.maxOps {
		return errTxnTooLarge
	}
	ctx, cancel := t.e.ctx()
	defer cancel()
	t.e.txns.Add(1)
	resp, err := t.e.cli.Txn(ctx).If(cmps...).Then(ops...).Else(elseOps...).Commit()
	if err != nil {
		if isTooLarge(err) {
			return errTxnTooLarge
		}
		return t.e.unavailable(err)
	}
	if !resp.Succeeded {
		t.seed, t.seedRev = make(map[string]*mvccpb.KeyValue, len(keys)), resp.Header.Revision
		for i, r := range resp.Responses {
			if i >= len(keys) {
				break
			}
			var kv *mvccpb.KeyValue
			if rr := r.GetResponseRange(); rr != nil && len(rr.Kvs) > 0 {
				kv = rr.Kvs[0]
			}
			t.seed[keys[i]] = kv
		}
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

func (b *etcdBucket) GetLikelyAbsent(key []byte) []byte {
	return b.t.getLikelyAbsent(b.lo + string(key))
}

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
