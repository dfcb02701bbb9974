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

type readGroup struct {
	keys []string
	kvs  []*mvccpb.KeyValue
	revs []int64
	err  error
	done chan struct{}
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
	g := &e.reads
	g.mu.Lock()
	if g.pending == nil {
		g.pending = &readGroup{done: make(chan struct{})}
	}
	p := g.pending
	i := len(p.keys)
	p.keys = append(p.keys, key)
	lead := !g.sending
	if lead {
		g.sending, g.pending = true, nil
	}
	g.mu.Unlock()
	if lead {
		e.sendReads(p)
	}
	<-p.done
	return p.kvs[i], p.revs[i], p.err
}

// sendReads sends one group, then hands the next (the reads that queued
// meanwhile) to a goroutine of its own, so this caller is not held up.
func (e *etcdEngine) sendReads(p *readGroup) {
	p.kvs, p.revs = make([]*mvccpb.KeyValue, len(p.keys)), make([]int64, len(p.keys))
	for lo := 0; lo < len(p.keys) && p.err == nil; lo += e.maxOps {
		hi := min(lo+e.maxOps, len(p.keys))
		ops := make([]clientv3.Op, 0, hi-lo)
		for _, k := range p.keys[lo:hi] {
			ops = append(ops, clientv3.OpGet(k))
		}
		ctx, cancel := e.ctx()
		e.gets.Add(1)
		resp, err := e.cli.Txn(ctx).Then(ops...).Commit()
		cancel()
		if err != nil {
			p.err = err
			break
		}
		for j, r := range resp.Responses {
			if rr := r.GetResponseRange(); rr != nil && len(rr.Kvs) > 0 {
				p.kvs[lo+j] = rr.Kvs[0]
			}
			p.revs[lo+j] = resp.Header.Revision
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
