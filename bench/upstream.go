package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/sandbox0/sandbox0d/internal/fakeupstream"
)

// The agent and environment every benchmark deployment names.
const (
	benchAgent = "agent_bench"
	benchEnv   = "env_bench"
)

// startFake starts the strict fake Managed Agents API on a loopback port,
// without request recording (it would grow without bound under load).
func startFake(latency time.Duration) (*fakeupstream.Server, error) {
	f := fakeupstream.NewServer(fakeupstream.WithoutRecording())
	f.AddAgent(benchAgent, 1)
	f.AddEnvironment(benchEnv)
	f.SetLatency(latency)
	if err := f.Start("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return f, nil
}

// fakeCleanCheck is the invariant that the daemon broke no rule of the
// upstream contract.
func fakeCleanCheck(f *fakeupstream.Server) check {
	v := f.Violations()
	if len(v) == 0 {
		return pass("no upstream contract violations", "the strict fake accepted every request")
	}
	var b strings.Builder
	for i, x := range v {
		if i == 5 {
			fmt.Fprintf(&b, "… and %d more", len(v)-5)
			break
		}
		fmt.Fprintf(&b, "%s %s: %s; ", x.Method, x.Path, x.Problem)
	}
	return fail("no upstream contract violations", fmt.Sprintf("%d violations: %s", len(v), b.String()))
}

// duplicateSessions counts runs that created more than one session upstream.
func duplicateSessions(f *fakeupstream.Server) (dups int, example string) {
	for runID, ss := range f.SessionsByRunID() {
		if len(ss) > 1 {
			dups++
			if example == "" {
				example = fmt.Sprintf("run %s has %d sessions (%s, %s)", runID, len(ss), ss[0].ID, ss[1].ID)
			}
		}
	}
	return dups, example
}
