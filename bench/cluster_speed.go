package main

import (
	"context"
	"errors"
)

// runClusterSpeed adds the cluster speed tables to sec. (Being built.)
func runClusterSpeed(ctx context.Context, h *harness, o options, sec *section) {
	sec.abort(errors.New("cluster speed: not built yet"))
}
