// Command bench is sandbox0d's proof harness: load, fire-burst, scale,
// crash and fault tests against the real binary, with a fast strict fake
// Managed Agents API (internal/fakeupstream) on loopback as its upstream.
//
//	go run ./bench [flags] api|burst|scale|crash|faults|all
//
// Each scenario builds the binary, starts it on a temporary data directory,
// drives it over TCP (and its Unix socket for backups), prints tables and
// exits non-zero when an invariant breaks; `all` also writes
// bench/results.md. Everything runs on loopback; every request loop is
// bounded in count and time.
//
// The package owns the harness only. It must not change the daemon's
// behaviour: it talks to the binary through its documented configuration,
// API, admin socket and metrics, and reads the database only from backups
// or from the file of a killed daemon.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// options are the command-line flags shared by every scenario.
type options struct {
	runs      int
	seed      int64
	keep      bool
	scaleN    int
	burstN    int
	apiN      int
	apiPhase  time.Duration
	apiBack   string
	idle      time.Duration
	kills     int
	killsSet  bool // -kills given: the cluster scenario runs its kill loop only then
	faultSlot time.Duration
	downSlots int
	out       string
	profile   string
	baseline  string
	sizes     string
	apiSeed   int
}

func main() {
	var o options
	flag.IntVar(&o.runs, "runs", 3, "repetitions; reported figures are medians")
	flag.Int64Var(&o.seed, "seed", 0, "random seed for the crash test (0: from the clock; printed)")
	flag.BoolVar(&o.keep, "keep", false, "keep temporary data directories and logs")
	flag.IntVar(&o.apiN, "api-deployments", 10000, "deployments stored for the API benchmark")
	flag.DurationVar(&o.apiPhase, "api-phase", 5*time.Second, "duration of one API load phase")
	flag.StringVar(&o.apiBack, "api-backend", "local", "session backend of the API benchmark's daemon: local (the embedded default: agents and environments from its config) or upstream (each create resolves them on the strict fake upstream)")
	flag.IntVar(&o.burstN, "burst-deployments", 10000, "deployments due in the same minute")
	flag.IntVar(&o.scaleN, "scale-deployments", 100000, "deployments stored for the scale test")
	flag.DurationVar(&o.idle, "idle", 60*time.Second, "idle CPU measurement window of the scale test")
	flag.IntVar(&o.kills, "kills", 24, "kill -9 cycles of the crash test")
	flag.DurationVar(&o.faultSlot, "fault-slot", time.Minute, "length of one fault phase (each spans one minute boundary)")
	flag.IntVar(&o.downSlots, "down-slots", 2, "fault phases the upstream stays down (several minutes)")
	flag.StringVar(&o.profile, "profile", "", "directory for CPU profiles of the daemon (api: one per operation in the last run; burst: one per fire burst; cluster: the follower and the harness hosting the etcd members over the last run's follower reads)")
	flag.StringVar(&o.baseline, "baseline-rev", "", "burst: also build this git revision and run it A/B against the working tree, interleaved")
	flag.StringVar(&o.sizes, "scale-sizes", "", "scale: grow one store through these sizes (e.g. 10000,100000,1000000) and report the scaling curve with growth factors instead of the restart test")
	flag.IntVar(&o.apiSeed, "scale-api-seed", 20000, "scale curve: deployments created through the API at most; beyond, API-created documents are cloned straight into the stopped daemon's file")
	flag.StringVar(&o.out, "out", "", "results file written by all (default <repo>/bench/results.md)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: go run ./bench [flags] api|burst|scale|crash|faults|cluster|all [flags]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() < 1 {
		flag.Usage()
		os.Exit(2)
	}
	// Flags may also follow the scenario: `go run ./bench cluster -kills 20`.
	name := flag.Arg(0)
	if err := flag.CommandLine.Parse(flag.Args()[1:]); err != nil || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	flag.Visit(func(f *flag.Flag) { o.killsSet = o.killsSet || f.Name == "kills" })
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := run(ctx, name, o)
	stop()
	os.Exit(code)
}

// scenario runs one named test and returns its report section.
type scenario func(ctx context.Context, h *harness, o options) *section

var scenarios = map[string]scenario{
	"api":     runAPI,
	"burst":   runBurst,
	"scale":   runScale,
	"crash":   runCrash,
	"faults":  runFaults,
	"cluster": runCluster,
}

// order is the order of `all` and of the report.
var order = []string{"api", "burst", "scale", "crash", "faults"}

func run(ctx context.Context, name string, o options) int {
	names := []string{name}
	if name == "all" {
		names = order
	} else if scenarios[name] == nil {
		fmt.Fprintf(os.Stderr, "bench: unknown scenario %q (want %s or all)\n", name, strings.Join(order, ", "))
		return 2
	}
	if o.apiBack != "local" && o.apiBack != "upstream" {
		fmt.Fprintf(os.Stderr, "bench: -api-backend %q: want local or upstream\n", o.apiBack)
		return 2
	}
	if o.runs < 1 {
		fmt.Fprintln(os.Stderr, "bench: -runs must be at least 1")
		return 2
	}
	h, err := newHarness(ctx, o.keep)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer h.close()
	rep := &report{machine: describeMachine(h.root), started: time.Now(), runs: o.runs}
	fmt.Println(rep.machine.markdown())
	failed := false
	for _, n := range names {
		if ctx.Err() != nil {
			break
		}
		h.logf("=== %s", n)
		started := time.Now()
		sec := scenarios[n](ctx, h, o)
		sec.took = time.Since(started)
		rep.sections = append(rep.sections, sec)
		fmt.Println(sec.markdown())
		if !sec.ok() {
			failed = true
		}
	}
	if name == "all" && ctx.Err() == nil {
		path := o.out
		if path == "" {
			path = h.root + "/bench/results.md"
		}
		if err := os.WriteFile(path, []byte(rep.markdown()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench: write results:", err)
			return 1
		}
		h.logf("wrote %s", path)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "bench: interrupted")
		return 1
	}
	if failed {
		fmt.Fprintln(os.Stderr, "bench: INVARIANT BROKEN (see the tables above)")
		return 1
	}
	return 0
}
