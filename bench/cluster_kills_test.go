package main

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/internal/fakeupstream"
)

// nextKill lands in the window of the kind it names, never in the past,
// and balances the kinds: over many picks each window gets kills.
func TestNextKillAimsAtItsWindowAndBalancesKinds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	windows := map[string]killWindow{}
	for _, w := range killWindows {
		windows[w.kind] = w
	}
	counts := map[string]int{}
	now := time.Date(2026, 3, 1, 12, 0, 7, 0, time.UTC)
	for range 300 {
		at, kind := nextKill(rng, now, counts)
		if !at.After(now) {
			t.Fatalf("kill at %s is not after now %s", at, now)
		}
		w, ok := windows[kind]
		if !ok {
			t.Fatalf("unknown kind %q", kind)
		}
		_, off := nearestBoundary(at)
		if w.kind == "mid-minute" {
			off = at.Sub(at.Truncate(time.Minute))
		}
		if off < w.from || off > w.to {
			t.Fatalf("%s kill at offset %s, outside [%s, %s]", kind, off, w.from, w.to)
		}
		counts[kind]++
		now = at.Add(4 * time.Second) // the failover before the next kill
	}
	for _, w := range killWindows {
		if counts[w.kind] < 50 {
			t.Errorf("%s: %d of 300 kills (counts %v)", w.kind, counts[w.kind], counts)
		}
	}
}

// The kill loop's check of intents resolved by a new leader: an
// unknown_error run whose session upstream got its initial events breaks
// the invariant; one whose session never got them, or that has none, does
// not.
func TestCheckKillSessionsFlagsAPromptedSessionLeftUnknown(t *testing.T) {
	unknown := func(id string) wireRun {
		r := wireRun{ID: id, DeploymentID: "depl_1"}
		r.Error = &struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		}{Type: "unknown_error"}
		return r
	}
	session := func(id, runID string) fakeupstream.Session {
		return fakeupstream.Session{ID: id, Metadata: map[string]string{
			fakeupstream.MetadataRunID: runID, fakeupstream.MetadataDeploymentID: "depl_1"}}
	}
	st := &killWrites{specs: map[string]deploymentSpec{}}
	listed := []wireDeployment{{ID: "depl_1", Name: "d"}}
	runs := []wireRun{unknown("run_prompted"), unknown("run_bare"), unknown("run_none")}
	sessions := []fakeupstream.Session{session("sesn_p", "run_prompted"), session("sesn_b", "run_bare")}
	inv := newInvariantLog(invKillResolved)
	var fc killCounts
	checkKillSessions(inv, st, runs, listed, sessions, func(id string) bool { return id == "sesn_p" }, &fc)
	assert.Equal(t, 3, fc.interrupted)
	assert.Equal(t, 2, fc.orphans)
	assert.Equal(t, 1, fc.prompted)
	got := inv.results()
	require.Len(t, got, 1)
	assert.False(t, got[0].ok, "an interrupted run whose session was prompted breaks the invariant")
	assert.Contains(t, got[0].detail, "run_prompted")
}
