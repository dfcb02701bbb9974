package store

import (
	"context"
	"encoding/json"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Nodes reads the live nodes (those whose lease still holds their key):
// one range read, for forwarding a session route to its owner (issue 26),
// where Status's endpoint health checks would cost a round trip each.
func (c *Cluster) Nodes(ctx context.Context) ([]NodeInfo, error) {
	rctx, cancel := context.WithTimeout(ctx, c.e.reqTimeout)
	defer cancel()
	resp, err := c.e.cli.Get(rctx, c.nodesPrefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, c.e.unavailable(err)
	}
	out := make([]NodeInfo, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var n NodeInfo
		if json.Unmarshal(kv.Value, &n) == nil {
			out = append(out, n)
		}
	}
	return out, nil
}
