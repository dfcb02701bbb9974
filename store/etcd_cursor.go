package store

import (
	"sort"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdCursor walks a bucket at the transaction's snapshot, merged with the
// transaction's own buffered writes. It reads pages of keys in the
// direction it moves (64 first, doubling to 1024 for long walks). A page
// read inside a write transaction adds the range it covered to the
// transaction's guards.
//
// A backward page costs etcd more than a forward one: etcd sorts a
// descending range after reading all of it (server/etcdserver/txn/range.go),
// so a newest-first page reads the index below its cursor. That is
// milliseconds at 10^5 entries; the listings it serves are bounded by
// retention.
type etcdCursor struct {
	b     *etcdBucket
	cur   string
	valid bool

	page   []*mvccpb.KeyValue
	loaded bool
	pFwd   bool
	pFrom  string
	pIncl  bool
	pMore  bool
	size   int64
}

const (
	firstCursorPage = 64
	maxCursorPage   = 1024
)

func (c *etcdCursor) First() ([]byte, []byte) { return c.step(c.b.lo, true, true) }
func (c *etcdCursor) Last() ([]byte, []byte)  { return c.step(c.b.hi, false, false) }
func (c *etcdCursor) Seek(k []byte) ([]byte, []byte) {
	return c.step(c.b.lo+string(k), true, true)
}

func (c *etcdCursor) Next() ([]byte, []byte) {
	if !c.valid {
		return nil, nil
	}
	return c.step(c.cur, false, true)
}

func (c *etcdCursor) Prev() ([]byte, []byte) {
	if !c.valid {
		return nil, nil
	}
	return c.step(c.cur, false, false)
}

// step moves to the first key past from (at from when incl) in the
// direction, from etcd or from the transaction's own puts, whichever comes
// first.
func (c *etcdCursor) step(from string, incl, fwd bool) ([]byte, []byte) {
	rk, rv, rok := c.remoteNext(from, incl, fwd)
	bk, bv, bok := c.b.bufferedNext(from, incl, fwd)
	var k string
	var v []byte
	switch {
	case rok && bok:
		if fwd && bk <= rk || !fwd && bk >= rk {
			k, v = bk, bv
		} else {
			k, v = rk, rv
		}
	case rok:
		k, v = rk, rv
	case bok:
		k, v = bk, bv
	default:
		c.valid = false
		return nil, nil
	}
	c.cur, c.valid = k, true
	return []byte(k[len(c.b.lo):]), v
}

func (c *etcdCursor) remoteNext(from string, incl, fwd bool) (string, []byte, bool) {
	for {
		kv, ok := c.fromPage(from, incl, fwd)
		if !ok {
			if !c.load(from, incl, fwd) {
				return "", nil, false
			}
			continue
		}
		if kv == nil {
			return "", nil, false
		}
		k := string(kv.Key)
		if c.b.t.hidden(k) {
			from, incl = k, false
			continue
		}
		return k, kv.Value, true
	}
}

// fromPage answers from the page in hand when it covers from; ok is false
// when a page must be read.
func (c *etcdCursor) fromPage(from string, incl, fwd bool) (*mvccpb.KeyValue, bool) {
	if !c.loaded || c.pFwd != fwd {
		return nil, false
	}
	before := fwd && from < c.pFrom || !fwd && from > c.pFrom
	if before || from == c.pFrom && incl && !c.pIncl {
		return nil, false
	}
	i := sort.Search(len(c.page), func(i int) bool {
		k := string(c.page[i].Key)
		if fwd {
			return k > from || incl && k == from
		}
		return k < from || incl && k == from
	})
	if i < len(c.page) {
		return c.page[i], true
	}
	if c.pMore {
		return nil, false
	}
	return nil, true
}

func (c *etcdCursor) load(from string, incl, fwd bool) bool {
	t := c.b.t
	if t.err != nil {
		return false
	}
	switch {
	case c.size == 0:
		c.size = firstCursorPage
	case c.size < maxCursorPage:
		c.size *= 2
	}
	var key, end string
	opts := []clientv3.OpOption{clientv3.WithLimit(c.size)}
	if fwd {
		key, end = max(from, c.b.lo), c.b.hi
		if !incl && from >= c.b.lo {
			key = from + "\x00"
		}
		opts = append(opts, clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	} else {
		key, end = c.b.lo, min(from, c.b.hi)
		if incl && from < c.b.hi {
			end = from + "\x00"
		}
		opts = append(opts, clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend))
	}
	c.loaded, c.pFwd, c.pFrom, c.pIncl, c.page, c.pMore = true, fwd, from, incl, nil, false
	if key >= end {
		return true
	}
	opts = append(opts, clientv3.WithRange(end))
	ctx, cancel := t.e.ctx()
	resp, err := t.e.cli.Get(ctx, key, t.readOpts(opts...)...)
	cancel()
	if err != nil {
		c.loaded = false
		t.fail(err)
		return false
	}
	t.pin(resp.Header.Revision)
	c.page, c.pMore = resp.Kvs, resp.More
	last := ""
	if n := len(resp.Kvs); n > 0 {
		last = string(resp.Kvs[n-1].Key)
	}
	if fwd {
		gEnd := end
		if resp.More && last != "" {
			gEnd = last + "\x00"
		}
		t.guard(key, gEnd)
	} else {
		gStart := key
		if resp.More && last != "" {
			gStart = last
		}
		t.guard(gStart, end)
	}
	return true
}
