package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"
)

// The read mirror: this node's copy of the deployment documents, kept
// current by a watch, so that a retrieve on any node costs a share of one
// linearizable read instead of a read of its own.
//
// A read stays linearizable. It still joins a group of first reads
// (etcd_reads.go), whose request is a linearizable read sent after the read
// arrived; that request's revision (the barrier) covers every write
// acknowledged before the read began. The read is then answered from the
// copy once the copy has reached the barrier, at the copy's revision: what
// etcd itself would have answered at that revision. A group whose keys are
// all mirrored sends one tiny Get as its barrier, whatever its size; the
// documents themselves never travel again until they change.
//
// The copy reaches a revision through its watch's events or, when the newest
// writes were to other keys (runs, the outbox, another install under its
// own prefix), through a progress notification asked of the watch's member.
// A read the copy cannot answer within mirrorWait (the watch is behind or
// being restarted) is read from etcd as before, so a slow watch costs time,
// never a stale answer.
//
// Members before etcd 3.4.31 / 3.5.13 could send a requested progress
// notification ahead of events still to come on the stream (etcd-io/etcd
// issues 15220 and 17507): a copy trusting it could answer from behind the
// barrier. With such a member among the endpoints the mirror stays off
// (Status.ReadMirror says why) and every read goes to etcd.

// mirrorWait bounds how long a read waits for the copy to reach its barrier
// before reading etcd instead: far above a healthy watch's lag on a busy
// cluster (milliseconds), far below a request's patience.
const mirrorWait = 100 * time.Millisecond

// progressEvery spaces progress requests while a read waits: a member
// drops a request while a watcher of the stream is catching up, so one may
// go unanswered.
const progressEvery = 10 * time.Millisecond

// mirrorPage is the page size of the copy's initial load.
const mirrorPage = 1000

type readMirror struct {
	e      *etcdEngine
	lo, hi string // the key range copied: [lo, hi)
	// wctx is the watch's context. RequestProgress must be sent with it:
	// the client picks the watch stream by the context's metadata, and
	// the mirror's own metadata gives it a stream no other watch shares
	// (a requested progress notification waits for every watcher on its
	// stream to be synced).
	wctx   context.Context
	cancel context.CancelFunc
	done   chan struct{}

	// progress asks follow's sender for a progress notification; one
	// goroutine sends them, so a reconnecting stream (which blocks
	// RequestProgress) holds one request, not one per waiting read.
	progress chan struct{}

	mu       sync.Mutex
	live     bool
	kvs      map[string]*mvccpb.KeyValue
	rev      int64         // the copy holds every change to [lo, hi) up to rev
	advanced chan struct{} // closed (and replaced) when rev or live changes

	// stall, held by a test, keeps the copy from applying what the watch
	// brings: a copy that has fallen behind.
	stall sync.RWMutex

	served  atomic.Uint64 // reads answered from the copy
	missed  atomic.Uint64 // reads the copy could not answer in time (read from etcd)
	reloads atomic.Uint64 // times the copy was loaded (1 + restarts of the watch)
}

// MirrorStatus is the read mirror as /admin/cluster shows it.
type MirrorStatus struct {
	Enabled bool   `json:"enabled"`
	Reason  string `json:"reason,omitempty"` // why it is off
	Live    bool   `json:"live"`             // loaded and watching
	Keys    int    `json:"keys"`
	// Revision is the etcd revision the copy has reached.
	Revision int64 `json:"revision"`
	// Served and Missed count reads answered from the copy and reads it
	// could not answer in time (read from etcd instead); Reloads counts
	// loads of the copy (the first, and one per watch restart).
	Served  uint64 `json:"served"`
	Missed  uint64 `json:"missed"`
	Reloads uint64 `json:"reloads"`
}

func newReadMirror(e *etcdEngine, lo, hi string) *readMirror {
	ctx, cancel := context.WithCancel(context.Background())
	ctx = metadata.AppendToOutgoingContext(clientv3.WithRequireLeader(ctx), "sandbox0d-watch", "read-mirror")
	m := &readMirror{e: e, lo: lo, hi: hi, wctx: ctx, cancel: cancel, done: make(chan struct{}),
		advanced: make(chan struct{}), progress: make(chan struct{}, 1)}
	go m.run()
	return m
}

func (m *readMirror) close() {
	m.cancel()
	<-m.done
}

func (m *readMirror) covers(key string) bool { return key >= m.lo && key < m.hi }

func (m *readMirror) isLive() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.live
}

// at answers key at a revision no older than barrier, waiting up to
// mirrorWait for the copy to reach it; ok is false when it did not (the
// caller reads etcd). The value is shared with the copy: read-only, as
// every value a transaction hands out.
func (m *readMirror) at(key string, barrier int64) (kv *mvccpb.KeyValue, rev int64, ok bool) {
	var timeout, resend *time.Timer
	for {
		m.mu.Lock()
		if !m.live {
			m.mu.Unlock()
			break
		}
		if m.rev >= barrier {
			kv, rev = m.kvs[key], m.rev
			m.mu.Unlock()
			m.served.Add(1)
			return kv, rev, true
		}
		wait := m.advanced
		m.mu.Unlock()
		m.askProgress()
		if timeout == nil {
			timeout, resend = time.NewTimer(mirrorWait), time.NewTimer(progressEvery)
			defer timeout.Stop()
			defer resend.Stop()
		}
		select {
		case <-wait:
			continue
		case <-resend.C:
			// A member drops a progress request while a watcher of the
			// stream is catching up: ask again.
			resend.Reset(progressEvery)
			continue
		case <-timeout.C:
		}
		break
	}
	m.missed.Add(1)
	return nil, 0, false
}

// askProgress asks for a progress notification, unless one is already
// waiting to be sent.
func (m *readMirror) askProgress() {
	select {
	case m.progress <- struct{}{}:
	default:
	}
}

// sendProgress sends the progress requests until ctx ends.
func (m *readMirror) sendProgress(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.progress:
			_ = m.e.cli.RequestProgress(ctx)
		}
	}
}

// advance records that the copy changed; the caller holds mu.
func (m *readMirror) advanceLocked() {
	close(m.advanced)
	m.advanced = make(chan struct{})
}

// run keeps the copy: load, watch, and on any failure of the watch (etcd
// down, compaction past the copy, the member losing its leader) drop the
// copy and start again.
func (m *readMirror) run() {
	defer close(m.done)
	backoff := 100 * time.Millisecond
	for m.wctx.Err() == nil {
		began := time.Now()
		_ = m.follow()
		m.mu.Lock()
		m.live, m.kvs = false, nil
		m.advanceLocked()
		m.mu.Unlock()
		if time.Since(began) > time.Minute {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-m.wctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// follow loads the copy and applies the watch's responses until the watch
// fails.
func (m *readMirror) follow() error {
	kvs := map[string]*mvccpb.KeyValue{}
	var rev int64
	for from := m.lo; ; {
		opts := []clientv3.OpOption{clientv3.WithRange(m.hi), clientv3.WithLimit(mirrorPage)}
		if rev != 0 {
			// Later pages at the first page's revision: one snapshot.
			opts = append(opts, clientv3.WithRev(rev))
		}
		ctx, cancel := context.WithTimeout(m.wctx, m.e.reqTimeout)
		resp, err := m.e.cli.Get(ctx, from, opts...)
		cancel()
		if err != nil {
			return err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			kvs[string(kv.Key)] = kv
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	ctx, stop := context.WithCancel(m.wctx)
	defer stop()
	go m.sendProgress(ctx)
	wc := m.e.cli.Watch(ctx, m.lo, clientv3.WithRange(m.hi), clientv3.WithRev(rev+1))
	m.mu.Lock()
	m.kvs, m.rev, m.live = kvs, rev, true
	m.advanceLocked()
	m.mu.Unlock()
	m.reloads.Add(1)
	for resp := range wc {
		if err := resp.Err(); err != nil {
			return err // compacted past the copy, or the member lost its leader
		}
		if resp.Canceled {
			return errors.New("read mirror: watch canceled")
		}
		m.stall.RLock()
		m.stall.RUnlock()
		m.mu.Lock()
		applied := m.rev
		for _, ev := range resp.Events {
			if ev.Kv.ModRevision <= applied {
				// Already applied: a member lacking etcd's fix for
				// issue 20221 can replay old events after a resumed
				// watch; applying one would put an old value under
				// a newer revision. (Compared with the revision
				// before this response: one revision's events, all
				// of one Txn, arrive together in one response.)
				continue
			}
			k := string(ev.Kv.Key)
			if ev.Type == clientv3.EventTypeDelete {
				delete(m.kvs, k)
			} else {
				m.kvs[k] = ev.Kv
			}
			// The events of one revision arrive in one response, so
			// the copy holds the whole revision once it is applied.
			m.rev = max(m.rev, ev.Kv.ModRevision)
		}
		if resp.IsProgressNotify() {
			// Every event up to the header's revision was sent
			// before this notification (on the members the mirror
			// runs with, see progressSafe).
			m.rev = max(m.rev, resp.Header.Revision)
		}
		m.advanceLocked()
		m.mu.Unlock()
	}
	return errors.New("read mirror: watch closed")
}

func (m *readMirror) status() MirrorStatus {
	m.mu.Lock()
	st := MirrorStatus{Enabled: true, Live: m.live, Keys: len(m.kvs), Revision: m.rev}
	m.mu.Unlock()
	st.Served, st.Missed, st.Reloads = m.served.Load(), m.missed.Load(), m.reloads.Load()
	return st
}

// progressSafe reports whether an etcd server of this version sends a
// requested progress notification only after every event it covers: the
// fixes of etcd-io/etcd 15237 and 17557, released in 3.4.31 and 3.5.13
// (and every 3.6).
func progressSafe(version string) bool {
	switch {
	case versionLess(version, "3.4.0"):
		return false
	case versionLess(version, "3.5.0"):
		return !versionLess(version, "3.4.31")
	case versionLess(version, "3.6.0"):
		return !versionLess(version, "3.5.13")
	}
	return true
}
