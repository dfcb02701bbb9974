package local

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sandbox0/sandbox0d/sessions"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A harness that ignores SIGTERM, kill_grace_period 3s and a shutdown
// budget of 1.5s: Close ends by the deadline (it used to take the budget,
// then the grace, then the grace again for the output drain: 7.5s here).
func TestCloseFitsInsideTheShutdownDeadline(t *testing.T) {
	t.Parallel() // it mostly waits out the shutdown budget
	rig := newRig(t, []Agent{shAgent("agent_stubborn", `trap '' TERM; echo "ready $$"; while :; do sleep 1; done`)},
		func(c *Config) { c.KillGracePeriod = 3 * time.Second })
	id := rig.create("agent_stubborn", nil)
	rig.waitForText(id, "ready ")

	const budget = 1500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	began := time.Now()
	err := rig.b.Close(ctx)
	took := time.Since(began)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	// The deadline plus scheduling slack on a loaded box, far below the
	// budget + grace the old code took.
	assert.Less(t, took, budget+time.Second, "Close took %s with a %s budget", took, budget)
	assert.Equal(t, statusIdle, mustGet(t, rig, id).Status, "a shutdown ends the turn, not the session")
	_, message := rig.sessionError(id)
	assert.Equal(t, "the daemon shut down during the turn; it was stopped and the session is idle", message)
}

// Every stage ends by its share of the deadline; without one the grace
// period is whole.
func TestShutdownBudgetBoundsEachStage(t *testing.T) {
	var s shutdownBudget
	assert.Equal(t, 10*time.Second, s.bound(10*time.Second, killStage))
	s.set(time.Now().Add(4*time.Second), 4*time.Second)
	assert.LessOrEqual(t, s.bound(10*time.Second, killStage), 3*time.Second)
	assert.Greater(t, s.bound(10*time.Second, killStage), 2*time.Second)
	assert.LessOrEqual(t, s.bound(10*time.Second, drainStage), 4*time.Second)
	assert.Equal(t, time.Second, s.bound(time.Second, drainStage), "a shorter grace is kept")
	s.set(time.Now().Add(-time.Second), 0)
	assert.Zero(t, s.bound(10*time.Second, drainStage), "past the deadline nothing waits")
}

// A clone stuck at shutdown (a git that ignores SIGTERM) is killed within
// the shutdown budget, not after the whole kill grace period.
func TestCloseKillsAStuckCloneWithinTheDeadline(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	stuckGit := filepath.Join(dir, "git")
	started := filepath.Join(dir, "started")
	require.NoError(t, os.WriteFile(stuckGit, []byte("#!/bin/sh\ntrap '' TERM\ntouch "+started+"\nexec sleep 1000\n"), 0o700))
	rig := newRig(t, []Agent{shAgent("agent_git", `echo should not run`)}, func(c *Config) {
		c.GitBinary = stuckGit
		c.KillGracePeriod = 10 * time.Second
		c.Environments[0].Networking.AllowedHosts = []string{"93.184.216.34"}
	})
	id := rig.create("agent_git", func(req *sessions.CreateRequest) {
		req.Resources = []sessions.Resource{{Type: "github_repository", URL: "https://93.184.216.34/a/b.git"}}
	})
	require.Eventually(t, func() bool { _, err := os.Stat(started); return err == nil }, waitLimit, 10*time.Millisecond)

	const budget = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	began := time.Now()
	_ = rig.b.Close(ctx)
	took := time.Since(began)
	assert.Less(t, took, budget+500*time.Millisecond, "Close took %s with a %s budget", took, budget)
	assert.NotContains(t, rig.texts(id), "should not run")
}
