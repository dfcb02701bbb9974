package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/cli"
	"github.com/sandbox0/sandbox0d/internal/fakeupstream"
)

// runAsDaemonEnv makes the test binary behave as the sandbox0d binary
// (main.go runs exactly cli.Run), so the CI crash test needs no separate
// build and its daemons run with the race detector.
const runAsDaemonEnv = "SANDBOX0D_BENCH_RUN_AS_DAEMON"

func TestMain(m *testing.M) {
	if os.Getenv(runAsDaemonEnv) == "1" {
		if err := cli.Run(context.Background(), os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "sandbox0d:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestCrashShort is the CI variant of `go run ./bench crash`: a handful of
// kill -9 cycles (crashKills, fewer under -race) with manual runs and creates in flight (scheduled fires
// need real minutes, so they are left to the full run), every invariant
// checked after each restart and against the strict fake at the end.
// SANDBOX0D_CRASH_SEED repeats a run's kill moments.
func TestCrashShort(t *testing.T) {
	t.Parallel() // it mostly waits on its daemons; so does TestWebhookEventsSurviveKill9
	seed := time.Now().UnixNano()
	if v := os.Getenv("SANDBOX0D_CRASH_SEED"); v != "" {
		var err error
		seed, err = strconv.ParseInt(v, 10, 64)
		require.NoError(t, err)
	}
	t.Logf("crash seed %d (repeat with SANDBOX0D_CRASH_SEED=%d)", seed, seed)

	fake := fakeupstream.New(t, fakeupstream.WithoutRecording()) // fails the test on any contract violation
	fake.AddAgent(benchAgent, 1)
	fake.AddEnvironment(benchEnv)
	fake.SetLatency(50 * time.Millisecond) // creations are in flight when the kill lands

	exe, err := os.Executable()
	require.NoError(t, err)
	self := launcher{path: exe, env: []string{runAsDaemonEnv + "=1"}}
	var (
		mu    sync.Mutex
		procs []*daemonProc
	)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range procs {
			p.kill()
		}
	})
	spawn := func(cfg daemonConfig) (*daemonProc, error) {
		p, err := self.spawn(cfg)
		if p != nil {
			mu.Lock()
			procs = append(procs, p)
			mu.Unlock()
		}
		return p, err
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Second)
	defer cancel()
	rep, err := crashTest(ctx, crashEnv{spawn: spawn, fake: fake, dir: t.TempDir(), logf: t.Logf}, crashParams{
		Kills: crashKills, ManualOnly: 20, ManualClients: 4, Creators: 1,
		MaxAlive: crashMaxAlive, StartupKills: true, Seed: seed,
	})
	require.NoError(t, err)
	for _, c := range rep.checks {
		assert.True(t, c.ok, "%s: %s", c.name, c.detail)
	}
	assert.GreaterOrEqual(t, rep.kills, crashKills)
	// Every kill after READY lands inside writes: a manual run or a create
	// was sent and not yet answered (the clients write back to back).
	assert.Equal(t, rep.kills-rep.startupKills, rep.midWriteKills, "kills after READY that landed mid-write")
	assert.Positive(t, rep.manualAcked, "manual runs were answered between kills")
	assert.Positive(t, rep.sessions, "sessions were created upstream")
	t.Logf("%d kills (%d before READY, %d mid-write), median start-to-READY %s, %d manual runs answered, %d creates answered, %d sessions upstream (%d orphaned by a kill), %d intents resolved at startup, %s",
		rep.kills, rep.startupKills, rep.midWriteKills, medianDuration(rep.readyIn), rep.manualAcked, rep.createsAcked, rep.sessions, rep.orphanSessions, rep.recovered, rep.took.Round(time.Millisecond))
}

func TestInvariantLogReportsViolationsAndUncheckedInvariants(t *testing.T) {
	l := newInvariantLog("a", "b", "c")
	l.checked("a")
	l.checked("a")
	l.checked("b", "broken once")
	got := l.results()
	require.Len(t, got, 3)
	assert.True(t, got[0].ok)
	assert.Contains(t, got[0].detail, "2 checks")
	assert.False(t, got[1].ok)
	assert.Contains(t, got[1].detail, "broken once")
	assert.False(t, got[2].ok, "an invariant never checked is not a pass")
}
