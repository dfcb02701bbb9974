package store

import (
	"context"
	"encoding/json"
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
}

func (c *Cluster) loadPrefix() string   { return c.e.prefix + "load/" }
func (c *Cluster) cordonPrefix() string { return c.e.prefix + "cordon/" }

// PublishLoad writes this node's load on its lease (a no-op before the
// node holds one).
func (c *Cluster) PublishLoad(ctx context.Context, l NodeLoad) error {
	lease := c.LeaseID()
	if lease == 0 {
		return nil
	}
	l.Node, l.At = c.opts.Node, time.Now().UTC()
	doc, _ := json.Marshal(l)
	rctx, cancel := context.WithTimeout(ctx, c.e.reqTimeout)
	defer cancel()
	_, err := c.e.cli.Put(rctx, c.loadPrefix()+c.opts.Node, string(doc), clientv3.WithLease(clientv3.LeaseID(lease)))
	return c.e.unavailable(err)
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
