package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The etcd engine. A bucket is a key range under the install's prefix
// (prefix "b/" bucket "/" key); a bucket's sequence is one key (prefix "q/"
// bucket). Transactions are optimistic (design.md, "Cluster mode"):
//
//   - every read of a transaction is made at one revision, pinned by its
//     first read, so a closure sees one snapshot as it does on bbolt;
//   - a read-write transaction remembers the mod revision of each key it
//     read (0: absent) and, for each range it scanned, the range; its writes
//     are buffered and its own reads see them;
//   - the commit is one Txn: If(every key read still has the revision it
//     had, no key in a scanned range changed or appeared since the snapshot,
//     every fence holds) Then(every write). A failed If means another writer
//     got in between: the closure runs again on a fresh snapshot.
//
// A range guard (ModRevision over the range < snapshot+1) catches keys that
// changed or appeared in the range, not keys deleted from it: etcd keeps no
// tombstone a compare can see. The scans inside write transactions only
// delete what they visit, or only count, for which a concurrent delete
// changes nothing; a value a decision depends on is read with Get, which is
// guarded exactly.

// DefaultEtcdPrefix is where an install's keys live unless store.etcd.prefix says otherwise.
const DefaultEtcdPrefix = "/sandbox0d/"

// DefaultMaxTxnOps is etcd's default --max-txn-ops: the most compares, and
// the most writes, one Txn may carry.
const DefaultMaxTxnOps = 128

// MinEtcdVersion is the oldest etcd server this client is tested against
// (Debian bookworm's etcd-server); older servers are refused at start.
const MinEtcdVersion = "3.4.0"

// EtcdOptions configure OpenEtcd.
type EtcdOptions struct {
	Endpoints []string
	Prefix    string // default DefaultEtcdPrefix; must end in "/"
	TLS       *tls.Config
	Username  string
	Password  string
	// DialTimeout bounds connecting at start (default 5s).
	DialTimeout time.Duration
	// RequestTimeout bounds one etcd call, so an outage answers with
	// ErrUnavailable instead of hanging a request (default 5s).
	RequestTimeout time.Duration
	// MaxTxnOps is the server's --max-txn-ops (default 128).
	MaxTxnOps int
	// Client is an already connected client to use instead of dialing
	// (tests); Close leaves it open.
	Client *clientv3.Client
	// NoReadMirror keeps no copy of the deployment documents on this node
	// (etcd_mirror.go): every read is then read from etcd.
	NoReadMirror bool
}

// ErrUnavailable is matched (errors.Is) by every error that means the store
// did not answer: the API answers 503 for it, not 500.
var ErrUnavailable = errors.New("store unavailable")

// UnavailableError is an etcd call that failed or timed out.
type UnavailableError struct {
	Endpoints []string
	Err       error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("etcd (store.etcd.endpoints %s) did not answer: %v", strings.Join(e.Endpoints, ","), e.Err)
}

// StoreUnavailable marks the error for the API, which answers 503 for it
// without importing the store.
func (e *UnavailableError) StoreUnavailable() bool { return true }

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }
func (e *UnavailableError) Unwrap() error        { return e.Err }

var (
	// errConflict: the Txn's If failed; the closure runs again.
	errConflict = errors.New("etcd transaction conflict")
	// errTxnTooLarge: more compares or writes than one Txn may carry.
	errTxnTooLarge = errors.New("the transaction needs more operations than etcd's --max-txn-ops allows (raise it on every member and set store.etcd.max_txn_ops to match)")
)

// maxConflictRetries bounds the reruns of one closure under contention.
const maxConflictRetries = 200

type etcdEngine struct {
	cli        *clientv3.Client
	ownsClient bool
	prefix     string
	endpoints  []string
	reqTimeout time.Duration
	maxOps     int

	commits   atomic.Uint64 // Txns that committed
	conflicts atomic.Uint64 // Txns refused by their If (closure reran)
	gets      atomic.Uint64 // range requests made by transactions (round trips before a commit)
	txns      atomic.Uint64 // Txn requests sent (commits, conflicts, refusals)
	observe   atomic.Pointer[func(op string, took time.Duration)]
	reads     readGrouper // first reads sent together (etcd_reads.go)

	mirror    *readMirror // nil: off, for mirrorOff's reason
	mirrorOff string
}

// ObserveRequests reports the duration of every etcd transaction (metrics);
// the bbolt engine reports nothing.
func (s *Store) ObserveRequests(fn func(op string, took time.Duration)) {
	if s.etcd != nil {
		s.etcd.observe.Store(&fn)
	}
}

// OpenEtcd connects to an etcd cluster and opens the install under
// opts.Prefix, creating its meta keys when the prefix is empty.
func OpenEtcd(opts EtcdOptions) (*Store, error) {
	if opts.Prefix == "" {
		opts.Prefix = DefaultEtcdPrefix
	}
	if !strings.HasSuffix(opts.Prefix, "/") {
		return nil, fmt.Errorf("store.etcd.prefix %q must end in \"/\" (so that one install's keys are never a prefix of another's)", opts.Prefix)
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 5 * time.Second
	}
	if opts.MaxTxnOps <= 0 {
		opts.MaxTxnOps = DefaultMaxTxnOps
	}
	e := &etcdEngine{prefix: opts.Prefix, endpoints: opts.Endpoints, reqTimeout: opts.RequestTimeout, maxOps: opts.MaxTxnOps}
	if opts.Client != nil {
		e.cli = opts.Client
		if len(e.endpoints) == 0 {
			e.endpoints = opts.Client.Endpoints()
		}
	} else {
		if len(opts.Endpoints) == 0 {
			return nil, errors.New("store.type is etcd but store.etcd.endpoints is empty: list the client URLs of the cluster (or set SANDBOX0D_STORE_ETCD_ENDPOINTS)")
		}
		cli, err := clientv3.New(clientv3.Config{Endpoints: opts.Endpoints, DialTimeout: opts.DialTimeout,
			TLS: opts.TLS, Username: opts.Username, Password: opts.Password,
			// Without it a dead cluster makes New hang until DialTimeout
			// only with some balancers; with it, New fails fast and says so.
			DialKeepAliveTime: 10 * time.Second, DialKeepAliveTimeout: 5 * time.Second})
		if err != nil {
			return nil, fmt.Errorf("connect to etcd (store.etcd.endpoints %s): %w", strings.Join(opts.Endpoints, ","), err)
		}
		e.cli, e.ownsClient = cli, true
	}
	versions, err := e.checkServer(opts.DialTimeout)
	if err != nil {
		_ = e.close()
		return nil, err
	}
	s := &Store{eng: e, etcd: e}
	if err := s.initEtcd(); err != nil {
		_ = e.close()
		return nil, err
	}
	switch {
	case opts.NoReadMirror:
		e.mirrorOff = "store.etcd.read_mirror is false"
	case len(versions) < len(e.cli.Endpoints()):
		e.mirrorOff = "not every endpoint answered at start, so their versions are unknown (restart the node once they do)"
	default:
		for ep, v := range versions {
			if !progressSafe(v) {
				e.mirrorOff = fmt.Sprintf("etcd at %s is %s, whose progress notifications can run ahead of its events; the read mirror needs 3.4.31, 3.5.13 or 3.6 on every member", ep, v)
			}
		}
	}
	if e.mirrorOff == "" {
		base := e.prefix + "b/" + string(bucketDeployments.name)
		e.mirror = newReadMirror(e, base+"/", base+"0")
	}
	return s, nil
}

// ReadMirror is the read mirror's state (etcd_mirror.go); on bbolt it is
// the zero value.
func (s *Store) ReadMirror() MirrorStatus {
	if s.etcd == nil {
		return MirrorStatus{}
	}
	return s.etcd.mirrorStatus()
}

func (e *etcdEngine) mirrorStatus() MirrorStatus {
	if e.mirror == nil {
		return MirrorStatus{Reason: e.mirrorOff}
	}
	return e.mirror.status()
}

// checkServer asks every endpoint for its version: it proves the cluster
// answers (a clear start error naming the endpoints otherwise) and refuses a
// server older than MinEtcdVersion. It returns the versions of the
// endpoints that answered.
func (e *etcdEngine) checkServer(timeout time.Duration) (map[string]string, error) {
	var errs []error
	versions := map[string]string{}
	for _, ep := range e.cli.Endpoints() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		st, err := e.cli.Status(ctx, ep)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ep, err))
			continue
		}
		if versionLess(st.Version, MinEtcdVersion) {
			return nil, fmt.Errorf("etcd at %s is version %s; sandbox0d needs etcd %s or newer (its client is go.etcd.io/etcd/client/v3 v3.7): upgrade the cluster", ep, st.Version, MinEtcdVersion)
		}
		versions[ep] = st.Version
	}
	if len(versions) == 0 {
		return nil, fmt.Errorf("etcd is unreachable at store.etcd.endpoints %s: %w (start the cluster, or fix the endpoints, TLS files or credentials)",
			strings.Join(e.cli.Endpoints(), ","), errors.Join(errs...))
	}
	return versions, nil
}

// versionLess compares dotted versions numerically ("3.4.23" < "3.5.0").
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		var x, y int
		if i < len(pa) {
			_, _ = fmt.Sscanf(pa[i], "%d", &x)
		}
		if i < len(pb) {
			_, _ = fmt.Sscanf(pb[i], "%d", &y)
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// initEtcd is init for etcd: the schema version and the cursor secret,
// written once by whichever node comes first (the optimistic commit makes a
// second node starting at the same moment read the first one's secret).
func (s *Store) initEtcd() error {
	return s.eng.update(func(t kvTx) error {
		meta := t.Bucket(bucketMeta.name)
		return s.initMeta(meta.Get, meta.Put)
	})
}

func (e *etcdEngine) kind() string { return "etcd" }

func (e *etcdEngine) close() error {
	if e.mirror != nil {
		e.mirror.close()
	}
	if e.ownsClient {
		return e.cli.Close()
	}
	return nil
}

func (e *etcdEngine) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), e.reqTimeout)
}

// unavailable wraps an etcd call's failure.
func (e *etcdEngine) unavailable(err error) error {
	if err == nil {
		return nil
	}
	return &UnavailableError{Endpoints: e.endpoints, Err: err}
}

func (e *etcdEngine) ping() error {
	ctx, cancel := e.ctx()
	defer cancel()
	_, err := e.cli.Get(ctx, e.prefix+"b/"+string(bucketMeta.name)+"/"+string(keySchemaVersion))
	return e.unavailable(err)
}

// An etcd call that fails (a member died, the raft leader changed) is
// retried, closure and all, until the request timeout has passed since the
// transaction began: a raft failover takes 1–1.5 s, and a request then
// answers late instead of failing. Past the timeout the caller gets
// ErrUnavailable (the API's 503). A commit whose answer was lost may have
// been applied; its rerun then reads its own writes, which the closures'
// idempotence (the contract of Update and Write) makes harmless.
func (e *etcdEngine) retryable(err error, start time.Time, attempt int) bool {
	if !errors.Is(err, ErrUnavailable) || time.Since(start) >= e.reqTimeout {
		return false
	}
	time.Sleep(min(time.Duration(attempt+1)*50*time.Millisecond, 500*time.Millisecond))
	return true
}

func (e *etcdEngine) view(fn func(kvTx) error) error {
	start := time.Now()
	defer e.observed("view", start)
	for attempt := 0; ; attempt++ {
		t := e.newTx(false)
		err := fn(kvTx{e: t})
		if t.err != nil {
			if e.retryable(t.err, start, attempt) {
				continue
			}
			return t.err
		}
		return err
	}
}

func (e *etcdEngine) update(fn func(kvTx) error) error {
	start := time.Now()
	defer e.observed("update", start)
	var refused *etcdTx // the previous attempt, refused by its compares
	for attempt := 0; ; attempt++ {
		t := e.newTx(true)
		if refused != nil {
			t = refused.rerun()
		}
		refused = nil
		err := fn(kvTx{e: t})
		if t.err != nil {
			if e.retryable(t.err, start, attempt) {
				continue
			}
			return t.err
		}
		if err != nil {
			// An error may rest on an assumption (a fence taken as held):
			// it stands once the assumptions are proved.
			verr := t.validate()
			if verr == nil || errors.Is(verr, errTxnTooLarge) {
				return err
			}
			err = verr
		} else {
			err = t.commit()
		}
		if e.retryable(err, start, attempt) {
			continue
		}
		if !errors.Is(err, errConflict) {
			if err == nil {
				e.commits.Add(1)
			}
			return err
		}
		e.conflicts.Add(1)
		if attempt >= maxConflictRetries {
			return fmt.Errorf("etcd: gave up after %d conflicting attempts (other writers kept changing what this write read)", attempt+1)
		}
		refused = t
		// Jitter spreads writers that collided so they do not collide again.
		time.Sleep(time.Duration(rand.IntN(1+min(attempt, 10))) * time.Millisecond)
	}
}

func (e *etcdEngine) observed(op string, start time.Time) {
	if fn := e.observe.Load(); fn != nil {
		(*fn)(op, time.Since(start))
	}
}

// isTooLarge recognises etcd's refusals of a Txn's size or shape.
func isTooLarge(err error) bool {
	return errors.Is(err, rpctypes.ErrTooManyOps) || errors.Is(err, rpctypes.ErrGRPCTooManyOps) ||
		errors.Is(err, rpctypes.ErrDuplicateKey) || errors.Is(err, rpctypes.ErrGRPCDuplicateKey) ||
		errors.Is(err, rpctypes.ErrRequestTooLarge) || errors.Is(err, rpctypes.ErrGRPCRequestTooLarge)
}
