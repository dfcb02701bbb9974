package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// LimiterCommand is the hidden first argument that turns any binary linking
// this package (the daemon, a test binary) into the limiter: a process that
// sets its RLIMIT_NOFILE, joins the control groups it is given and then
// execs the real program (bwrap, or the harness without a sandbox). Joining
// before the exec is what makes the limits race-free: the program and
// everything it forks start inside the groups, which a pid written after
// Start could not promise (the harness could fork first).
const LimiterCommand = "__sandbox0d-limits"

// limiterPath is the daemon's own binary, as the kernel knows it: it stays
// valid when the file was replaced by an upgrade.
const limiterPath = "/proc/self/exe"

// The limiter runs before main (and before a test binary's TestMain), so
// every binary that can prepare limited processes can also be the limiter,
// without wiring of its own.
func init() {
	if len(os.Args) > 1 && os.Args[1] == LimiterCommand {
		os.Exit(runLimiter(os.Args[2:]))
	}
}

// runLimiter reads [--nofile N] [--cgroup DIR]... -- PATH ARGV0 ARGS...
func runLimiter(args []string) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "sandbox0d limits: "+format+"\n", a...)
		return 126
	}
	var groups []string
	var nofile uint64
	for len(args) > 0 && args[0] != "--" {
		if len(args) < 2 {
			return fail("usage: [--nofile N] [--cgroup DIR]... -- PATH ARGV0 ARGS...")
		}
		switch args[0] {
		case "--cgroup":
			groups = append(groups, args[1])
		case "--nofile":
			n, err := strconv.ParseUint(args[1], 10, 64)
			if err != nil {
				return fail("--nofile: %v", err)
			}
			nofile = n
		default:
			return fail("unknown flag %s", args[0])
		}
		args = args[2:]
	}
	if len(args) > 0 {
		args = args[1:] // "--"
	}
	if len(args) < 2 {
		return fail("usage: [--nofile N] [--cgroup DIR]... -- PATH ARGV0 ARGS...")
	}
	if nofile > 0 {
		// syscall.Setrlimit, not a raw call: it also tells the runtime not
		// to restore its original limit at the exec.
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: nofile, Max: nofile}); err != nil {
			return fail("setting open_files to %d: %v", nofile, err)
		}
	}
	for _, g := range groups {
		// "0" is the writer: the whole process, every thread.
		if err := writeFile(g+"/cgroup.procs", "0"); err != nil {
			return fail("joining the control group %s: %v", g, err)
		}
	}
	err := syscall.Exec(args[0], args[1:], os.Environ())
	return fail("starting %s: %v", args[0], err) + 1 // 127, as a shell says "not found"
}

// limitPollInterval is how often a running tree's group is checked for an
// OOM kill or a refused fork.
const limitPollInterval = 100 * time.Millisecond

// applyLimits makes p start through the limiter, in a control group of its
// own with spec.Limits, and end as a whole when it goes over its memory or
// process limit. Sandboxes call it last, once p.Cmd, afterStart, signal and
// finish are set. Limits this host cannot enforce are left out (the daemon
// warned at startup); a group that cannot be made is an error.
func applyLimits(p *Process, spec Spec) error {
	l := spec.Limits
	cmd := p.Cmd
	if l.IsZero() || cmd.Err != nil {
		return nil // nothing to do, or Start reports the lookup error
	}
	// A program that cannot be run fails Start as it would without the
	// limiter (the limiter would exit 127 with a message of its own).
	program := cmd.Path
	if !filepath.IsAbs(program) && cmd.Dir != "" {
		program = filepath.Join(cmd.Dir, program)
	}
	if err := syscall.Access(program, 1 /* X_OK */); err != nil {
		cmd.Err = &os.PathError{Op: "fork/exec", Path: cmd.Path, Err: err}
		return nil
	}
	host := hostCgroups()
	var g *turnGroup
	if l.needsCgroup() && (host.v2 != "" || len(host.v1) > 0) {
		var err error
		if g, err = host.newTurnGroup(groupName(spec.SessionID), l); err != nil {
			return fmt.Errorf("sandbox: making the control group of session %s: %w", spec.SessionID, err)
		}
	}
	args := []string{"sandbox0d", LimiterCommand}
	if l.OpenFiles > 0 && host.rlimit {
		args = append(args, "--nofile", strconv.FormatUint(l.OpenFiles, 10))
	}
	if g != nil {
		for _, d := range g.paths() {
			args = append(args, "--cgroup", d)
		}
	}
	if len(args) == 2 {
		return nil
	}
	cmd.Args = append(append(args, "--", cmd.Path), cmd.Args...)
	cmd.Path = limiterPath
	if g == nil {
		return nil
	}

	stop := make(chan struct{})
	var monitor sync.WaitGroup
	afterStart, finish := p.afterStart, p.finish
	p.afterStart = func(cmd *exec.Cmd) error {
		if afterStart != nil {
			if err := afterStart(cmd); err != nil {
				return err
			}
		}
		monitor.Go(func() {
			t := time.NewTicker(limitPollInterval)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				if e := g.exceeded(); e != nil {
					p.limitErr.CompareAndSwap(nil, e)
					_ = p.Signal(syscall.SIGKILL)
					g.kill()
					return
				}
			}
		})
		return nil
	}
	p.finish = func() {
		close(stop)
		monitor.Wait()
		if finish != nil {
			finish()
		}
		if e := g.exceeded(); e != nil {
			p.limitErr.CompareAndSwap(nil, e)
		}
		g.remove()
	}
	return nil
}
