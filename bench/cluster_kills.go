package main

import (
	"context"
	"errors"
)

// runClusterKills adds the kill loop's invariants and failover times to sec.
// (Being built.)
func runClusterKills(ctx context.Context, h *harness, o options, sec *section) {
	sec.abort(errors.New("cluster kill loop: not built yet"))
}
