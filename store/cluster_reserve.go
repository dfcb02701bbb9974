package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Placement reserves a slot (issue 26). Placing reads every node's load and
// picks one; creations on several nodes at the same instant would all read
// the same free slots and pick the same node. So a placement takes its slot
// on the chosen node's load key in a compare-and-swap on the revision it
// read: of two placements that read the same load, one reserves and the
// other reads again and sees one slot fewer. The node that creates the
// session drops the reservation in the write that publishes its load with
// the session counted (PublishLoad's release), so the slot is counted once
// at every instant; a reservation whose creation never came (the placing
// node died, the target could not be reached) is dropped by the target's
// next publish once it is two lease TTLs old, or released by the placer.

// Reservation is one slot taken by a placement.
type Reservation struct {
	Token string    `json:"token"`
	At    time.Time `json:"at"`
}

// Reserve takes one slot on l's node if its load key is still as Loads read
// it; ok is false when it changed (read the loads again and choose again).
// The key keeps the node's lease.
func (c *Cluster) Reserve(ctx context.Context, l NodeLoad, token string) (ok bool, err error) {
	key := c.loadPrefix() + l.Node
	l.Reserved = append(slices.Clone(l.Reserved), Reservation{Token: token, At: time.Now().UTC()})
	l.Cordoned = false // a filled-in view, not stored
	doc, _ := json.Marshal(l)
	rctx, cancel := context.WithTimeout(ctx, c.e.reqTimeout)
	defer cancel()
	resp, err := c.e.cli.Txn(rctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", l.rev)).
		Then(clientv3.OpPut(key, string(doc), clientv3.WithIgnoreLease())).Commit()
	if err != nil {
		return false, c.e.unavailable(err)
	}
	return resp.Succeeded, nil
}

// Release drops the reservation token on node (the creation failed or went
// elsewhere). A key that is gone (the node's lease expired) has nothing to
// release.
func (c *Cluster) Release(ctx context.Context, node, token string) error {
	key := c.loadPrefix() + node
	for range 50 {
		rctx, cancel := context.WithTimeout(ctx, c.e.reqTimeout)
		cur, err := c.e.cli.Get(rctx, key)
		cancel()
		if err != nil {
			return c.e.unavailable(err)
		}
		if len(cur.Kvs) == 0 {
			return nil
		}
		var l NodeLoad
		if err := json.Unmarshal(cur.Kvs[0].Value, &l); err != nil {
			return err
		}
		n := len(l.Reserved)
		l.Reserved = slices.DeleteFunc(l.Reserved, func(r Reservation) bool { return r.Token == token })
		if len(l.Reserved) == n {
			return nil
		}
		doc, _ := json.Marshal(l)
		rctx, cancel = context.WithTimeout(ctx, c.e.reqTimeout)
		resp, err := c.e.cli.Txn(rctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", cur.Kvs[0].ModRevision)).
			Then(clientv3.OpPut(key, string(doc), clientv3.WithIgnoreLease())).Commit()
		cancel()
		if err != nil {
			return c.e.unavailable(err)
		}
		if resp.Succeeded {
			return nil
		}
	}
	return fmt.Errorf("releasing a reservation on %s: the key kept changing under 50 attempts", node)
}
