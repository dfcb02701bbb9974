//go:build race

package main

import "time"

// Under the race detector (CI) the crash test makes fewer and shorter
// kill -9 cycles: a race-enabled daemon starts and serves several times
// slower, and every cycle still kills it mid-write (the test asserts each
// kill after READY lands while a manual run or a create is unanswered).
// The webhook kill test likewise makes fewer cycles (each still kills
// while changes are unanswered, which it asserts too). Without -race the
// full counts run.
const (
	crashKills    = 5
	crashMaxAlive = 600 * time.Millisecond
	webhookKills  = 3
)
