package daemon_test

import (
	"flag"
	"os"
	"testing"

	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
)

// TestMain runs up to four parallel tests at once unless -parallel says
// otherwise. The default is GOMAXPROCS (2 on a small CI box), but most of
// these tests wait (on sockets, shutdown budgets, lock timeouts and child
// processes) rather than compute, so two at a time leaves the cores idle.
//
// The test binary is also what the daemon it runs starts as the egress
// forwarder of limited sandboxes (the daemon's own executable), and the
// hostile harness of the pressure tests.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case sandbox.ForwarderCommand:
			os.Exit(sandbox.RunForwarder(os.Args[2:]))
		case egressFloodCommand:
			os.Exit(egressFlood(os.Args[2:]))
		}
	}
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", "4")
	}
	os.Exit(m.Run())
}
