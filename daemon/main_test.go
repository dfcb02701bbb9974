package daemon_test

import (
	"flag"
	"os"
	"testing"
)

// TestMain runs up to four parallel tests at once unless -parallel says
// otherwise. The default is GOMAXPROCS (2 on a small CI box), but most of
// these tests wait (on sockets, shutdown budgets, lock timeouts and child
// processes) rather than compute, so two at a time leaves the cores idle.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", "4")
	}
	os.Exit(m.Run())
}
