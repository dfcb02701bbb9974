package store

import (
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Grouped first reads. The first read of a transaction is what makes it
// linearizable (etcd confirms with a quorum that its member is current: a
// ReadIndex round), and on a node serving many API reads each costs a
// request of its own. Reads that arrive while one is in flight are sent
// together as the next request instead, one Txn of Gets: one ReadIndex,
// one round trip, one revision for all of them. Each read of the group
// arrived before the group was sent, so each still sees every write
// acknowledged before it began. Later reads of a transaction are pinned to
// its revision and go alone.
//
// A key the read mirror holds (etcd_mirror.go) joins the group without a
// Get of its own: the group's revision is its barrier, and the mirror
// answers it once its copy has reached that revision. A group of mirrored
// keys only sends one Get of a key that never exists.

type readGroup struct {
	keys     []string
	mirrored []bool // read from the mirror once the group's revision is known
	kvs      []*mvccpb.KeyValue
	revs     []int64
	rev      int64 // the revision of the group's first request: the mirror's barrier
	err      error
	done     chan struct{}
}

type readGrouper struct {
	mu      sync.Mutex
	pending *readGroup
	sending bool
}

// firstRead reads key at the current revision, grouped with the first
// reads of other transactions; it returns the value (nil: absent) and the
// revision it was read at.
func (e *etcdEngine) firstRead(key string) (*mvccpb.KeyValue, int64, error) {
	m := e.mirror
	mirrored := m != nil && m.covers(key) && m.isLive()
	p, i := e.joinReads(key, mirrored)
	<-p.done
	if p.err != nil || !mirrored {
		return p.kvs[i], p.revs[i], p.err
	}
	if kv, rev, ok := m.at(key, p.rev); ok {
		return kv, rev, nil
	}
	// The copy is behind: read etcd itself, in the next group.
	p, i = e.joinReads(key, false)
	<-p.done
	return p.kvs[i], p.revs[i], p.err
}

// joinReads adds key to the group being formed, and sends it if no group
// is in flight; the caller waits on the group's done.
func (e *etcdEngine) joinReads(key string, mirrored bool) (*readGroup, int) {
	g := &e.reads
	g.mu.Lock()
	if g.pending == nil {
		g.pending = &readGroup{done: make(chan struct{})}
	}
	p := g.pending
	i := len(p.keys)
	p.keys = append(p.keys, key)
	p.mirrored = append(p.mirrored, mirrored)
	lead := !g.sending
	if lead {
		g.sending, g.pending = true, nil
	}
	g.mu.Unlock()
	if lead {
		e.sendReads(p)
	}
	return p, i
}

// sendReads sends one group, then hands the next (the reads that queued
// meanwhile) to a goroutine of its own, so this caller is not held up.
func (e *etcdEngine) sendReads(p *readGroup) {
	p.kvs, p.revs = make([]*mvccpb.KeyValue, len(p.keys)), make([]int64, len(p.keys))
	var direct []int // the keys read from etcd
	for i, mirrored := range p.mirrored {
		if !mirrored {
			direct = append(direct, i)
		}
	}
	if len(direct) == 0 {
		p.rev, p.err = e.barrier()
	}
	for lo := 0; lo < len(direct) && p.err == nil; lo += e.maxOps {
		hi := min(lo+e.maxOps, len(direct))
		ops := make([]clientv3.Op, 0, hi-lo)
		for _, i := range direct[lo:hi] {
			ops = append(ops, clientv3.OpGet(p.keys[i]))
		}
		ctx, cancel := e.ctx()
		e.gets.Add(1)
		resp, err := e.cli.Txn(ctx).Then(ops...).Commit()
		cancel()
		if err != nil {
			p.err = err
			break
		}
		if p.rev == 0 {
			p.rev = resp.Header.Revision
		}
		for j, r := range resp.Responses {
			i := direct[lo+j]
			if rr := r.GetResponseRange(); rr != nil && len(rr.Kvs) > 0 {
				p.kvs[i] = rr.Kvs[0]
			}
			p.revs[i] = resp.Header.Revision
		}
	}
	close(p.done)
	g := &e.reads
	g.mu.Lock()
	next := g.pending
	g.pending = nil
	if next == nil {
		g.sending = false
	}
	g.mu.Unlock()
	if next != nil {
		go e.sendReads(next)
	}
}

// barrier is a linearizable read of nothing: the cluster's revision, as a
// quorum confirms it.
func (e *etcdEngine) barrier() (int64, error) {
	ctx, cancel := e.ctx()
	defer cancel()
	resp, err := e.cli.Get(ctx, e.prefix+"barrier", clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}
