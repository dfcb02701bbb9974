package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Placement of local sessions (issue 26): each node publishes its load on
// its own lease, so a dead node's record goes with its lease; cordons are
// plain keys, kept until uncordoned.

// NodeLoad is one node's capacity and load.
type NodeLoad struct {
	Node      string    `json:"node"`
	FreeSlots int       `json:"free_slots"` // local.max_concurrent_sessions less the turns running or waiting
	Running   int       `json:"running"`    // sessions with a turn running or waiting
	DiskFree  uint64    `json:"disk_free"`  // bytes free in data_dir (0: unknown)
	Cordoned  bool      `json:"cordoned"`   // filled in by Loads from the cordon keys
	At        time.Time `json:"at"`
	// Reserved holds the slots placements took on this node for sessions
	// it has not created yet (cluster_reserve.go).
	Reserved []Reservation `json:"reserved,omitempty"`

	// Counted holds the reservations of sessions FreeSlots and Running
	// already count (the node's own view, never stored): PublishLoad
	// drops them in the write that counts their sessions.
	Counted []string `json:"-"`

	rev int64 // the load key's mod revision, for Reserve's compare
}

// Free is the node's free slots less its reservations: what placement
// compares.
func (l NodeLoad) Free() int { return l.FreeSlots - len(l.Reserved) }

// reservationLifetime is how long an unreleased reservation holds its slot:
// its creation normally drops it within a request; this only bounds the
// slot a dead placer left. At least a minute, because a creation under load
// (a sandbox to start, a slow disk) can outlast two short leases, and a
// reservation dropped too early lets another placement take the same slot.
func reservationLifetime(leaseTTL time.Duration) time.Duration { return max(2*leaseTTL, time.Minute) }

func (c *Cluster) loadPrefix() string   { return c.e.prefix + "load/" }
func (c *Cluster) cordonPrefix() string { return c.e.prefix + "cordon/" }

// PublishLoad writes this node's load on its lease (a no-op before the
// node holds one). The reservations on the key are kept, less release (the
// reservation of a session this node has just created, which its load now
// counts) and those older than twice the lease TTL (a placement whose
// creation never came). It is a compare-and-swap, so a reservation made
// meanwhile is never overwritten.
//
// load is called after each read of the key: a session whose reservation
// another publish of this node already dropped was created before that
// publish, so the load computed after reading its outcome counts it.
func (c *Cluster) PublishLoad(ctx context.Context, load func() NodeLoad, release string) error {
	lease := c.LeaseID()
	if lease == 0 {
		return nil
	}
	key := c.loadPrefix() + c.opts.Node
	for range 50 {
		rctx, cancel := context.WithTimeout(ctx, c.e.reqTimeout)
		cur, err := c.e.cli.Get(rctx, key)
		cancel()
		if err != nil {
			return c.e.unavailable(err)
		}
		l := load()
		l.Node, l.At = c.opts.Node, time.Now().UTC()
		cmp := clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
		l.Reserved = nil
		if len(cur.Kvs) == 1 {
			cmp = clientv3.Compare(clientv3.ModRevision(key), "=", cur.Kvs[0].ModRevision)
			var old NodeLoad
			if json.Unmarshal(cur.Kvs[0].Value, &old) == nil {
				for _, r := range old.Reserved {
					if r.Token != release && !slices.Contains(l.Counted, r.Token) && l.At.Sub(r.At) < reservationLifetime(c.opts.LeaseTTL) {
						l.Reserved = append(l.Reserved, r)
					}
				}
			}
		}
		doc, _ := json.Marshal(l)
		rctx, cancel = context.WithTimeout(ctx, c.e.reqTimeout)
		resp, err := c.e.cli.Txn(rctx).If(cmp).Then(clientv3.OpPut(key, string(doc), clientv3.WithLease(clientv3.LeaseID(lease)))).Commit()
		cancel()
		if err != nil {
			return c.e.unavailable(err)
		}
		if resp.Succeeded {
			return nil
		}
	}
	return fmt.Errorf("publishing this node's load: the key kept changing under 50 attempts")
}

// Loads reads the load of every live node, with its cordon.
func (c *Cluster) Loads(ctx context.Context) ([]NodeLoad, error) {
	rctx, cancel := context.WithTimeout(ctx, c.e.reqTimeout)
	defer cancel()
	resp, err := c.e.cli.Txn(rctx).Then(clientv3.OpGet(c.loadPrefix(), clientv3.WithPrefix()),
		clientv3.OpGet(c.cordonPrefix(), clientv3.WithPrefix())).Commit()
	if err != nil {
		return nil, c.e.unavailable(err)
	}
	cordoned := map[string]bool{}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		cordoned[string(kv.Key[len(c.cordonPrefix()):])] = true
	}
	var out []NodeLoad
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		var l NodeLoad
		if json.Unmarshal(kv.Value, &l) == nil {
			l.Cordoned = cordoned[l.Node]
			l.rev = kv.ModRevision
			out = append(out, l)
		}
	}
	return out, nil
}

// SetCordoned marks node cordoned (no new sessions are placed on it) or
// clears the mark. It works on any engine-level node name, live or not.
func (s *Store) SetCordoned(ctx context.Context, node string, on bool) error {
	e := s.etcd
	if e == nil {
		return ErrNotClustered
	}
	rctx, cancel := context.WithTimeout(ctx, e.reqTimeout)
	defer cancel()
	var err error
	if on {
		_, err = e.cli.Put(rctx, e.prefix+"cordon/"+node, time.Now().UTC().Format(time.RFC3339))
	} else {
		_, err = e.cli.Delete(rctx, e.prefix+"cordon/"+node)
	}
	return e.unavailable(err)
}
