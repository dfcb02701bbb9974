package main

import (
	"context"
)

// runCluster is `go run ./bench cluster [-kills N]`: sandbox0d nodes on a
// three-member etcd cluster. It always measures speed (fenced fires per
// second and follower reads, as ratios to single-node bbolt figures taken in
// the same run: cluster_speed.go); with -kills N it then runs the kill loop
// (the leader killed with SIGKILL N times around fire minutes, an etcd member
// restarted, then the invariants and failover times: cluster_kills.go).
//
// It is not part of `all`: the kill loop spans many real minutes.
func runCluster(ctx context.Context, h *harness, o options) *section {
	sec := &section{name: "cluster", title: "Cluster on etcd: speed and kill loop"}
	runClusterSpeed(ctx, h, o, sec)
	if o.killsSet && o.kills > 0 && ctx.Err() == nil {
		runClusterKills(ctx, h, o, sec)
	}
	return sec
}
