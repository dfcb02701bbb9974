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

// limiterScript is the limiter: a /bin/sh that sets its RLIMIT_NOFILE
// (soft and hard), joins the control groups it is given and then execs the
// real program (bwrap, or the harness without a sandbox). Joining before the
// exec is what makes the limits race-free: the program and everything it
// forks start inside the groups, which a pid written after Start could not
// promise (the harness could fork first). A shell, not the daemon's own
// binary re-executed: it starts in a few milliseconds where a 20 MB Go
// binary takes ~50 ms on these machines, and every turn pays it.
// Arguments: NOFILE (0: leave it) GROUP... -- PROGRAM ARGS...
const limiterScript = `n=$1; shift
if [ "$n" != 0 ]; then
	ulimit -n "$n" || { echo "sandbox0d limits: cannot set open_files to $n" >&2; exit 126; }
fi
while [ "$1" != -- ]; do
	echo $$ > "$1/cgroup.procs" || { echo "sandbox0d limits: cannot join the control group $1" >&2; exit 126; }
	shift
done
shift
exec "$@"`

// limiterShell runs limiterScript.
const limiterShell = "/bin/sh"

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
	nofile := uint64(0)
	if host.rlimit {
		nofile = l.OpenFiles
		// Above the daemon's own hard limit it cannot be raised (without
		// root) and the harness could not exceed that anyway.
		var own syscall.Rlimit
		if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &own) == nil && nofile > own.Max {
			nofile = own.Max
		}
	}
	if nofile == 0 && g == nil {
		return nil
	}
	args := []string{"sh", "-c", limiterScript, "sandbox0d-limits", strconv.FormatUint(nofile, 10)}
	if g != nil {
		args = append(args, g.paths()...)
	}
	// The program's own argv[0] gives way to its path (sh's exec has no
	// way to set it); bwrap is named by its path anyway.
	cmd.Args = append(append(args, "--", cmd.Path), cmd.Args[1:]...)
	cmd.Path = limiterShell
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
