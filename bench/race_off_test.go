//go:build !race

package main

import "time"

// See race_on_test.go.
const (
	crashKills    = 8
	crashMaxAlive = 2 * time.Second
	webhookKills  = 5
)
