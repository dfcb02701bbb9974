package local

import (
	"math"
	"runtime"
	"sync"

	"github.com/sandbox0/sandbox0d/internal/bytesize"
	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
)

// Limits bound what one turn of a session in an environment may use: its
// harness and everything that starts (local.environments[].limits). The
// zero value of a field means its default.
type Limits struct {
	// Memory in bytes; default DefaultMemoryLimit.
	Memory int64
	// Processes is the most tasks (processes and threads) at once; default
	// DefaultProcessLimit.
	Processes int64
	// CPU is cores' worth of CPU time, e.g. 1.5; default every CPU of the
	// machine (no throttling).
	CPU float64
	// OpenFiles is every process's open-file limit; default
	// DefaultOpenFilesLimit.
	OpenFiles int64
	// WorkspaceBytes caps the disk the session's workspace uses; over it
	// the turn is stopped and the session terminated. 0 means
	// DefaultWorkspaceBytes, -1 no cap.
	WorkspaceBytes int64
}

// Defaults and floors of the limits. The defaults keep the daemon and the
// other sessions alive without getting in the way of ordinary agent work.
const (
	// MaxDefaultMemoryLimit caps the memory default: 4 GiB holds a Claude
	// Code CLI with a language server and a test run. Below it the default
	// is a share of the machine, see DefaultMemoryLimit.
	MaxDefaultMemoryLimit = 4 << 30
	// DefaultProcessLimit is enough for parallel builds (make -j, node
	// workers, a language server's threads) and far below what takes the
	// machine's pid space or the daemon's threads away.
	DefaultProcessLimit = 512
	// DefaultOpenFilesLimit is what node and git want for large trees; the
	// daemon's own descriptors are not counted against it (it is a
	// per-process limit).
	DefaultOpenFilesLimit = 4096

	// Floors: the sandbox's own processes (the limiter, bwrap, its init,
	// the egress forwarder) run inside the limits too.
	minMemoryLimit    = 32 << 20
	minProcessLimit   = 16
	minOpenFilesLimit = 64
	minCPULimit       = 0.01 // the kernel's smallest quota: 1 ms per 100 ms
)

// DefaultMemoryLimit is the memory limit of an environment that sets none:
// the machine's memory (or the daemon's own cgroup limit, if lower) shared
// by maxConcurrent turns and one more share for the daemon and the rest of
// the system, so that every slot at its limit still leaves that share free;
// at most MaxDefaultMemoryLimit.
func DefaultMemoryLimit(maxConcurrent int) int64 {
	total := sandbox.HostMemory()
	if total <= 0 {
		return MaxDefaultMemoryLimit
	}
	return max(minMemoryLimit, min(MaxDefaultMemoryLimit, total/int64(maxConcurrent+1)))
}

// withDefaults fills in the default of every limit left zero.
func (l Limits) withDefaults(maxConcurrent int) Limits {
	if l.Memory == 0 {
		l.Memory = DefaultMemoryLimit(maxConcurrent)
	}
	if l.Processes == 0 {
		l.Processes = DefaultProcessLimit
	}
	if l.CPU == 0 {
		// No quota: the kernel shares the CPUs fairly among the turns'
		// groups and the daemon already; a quota would only slow a turn
		// that has the machine to itself.
		l.CPU = float64(runtime.NumCPU())
	}
	if l.OpenFiles == 0 {
		l.OpenFiles = DefaultOpenFilesLimit
	}
	if l.WorkspaceBytes == 0 {
		l.WorkspaceBytes = DefaultWorkspaceBytes
	}
	return l
}

// validate reports every bad limit under key (local.environments[i].limits).
func (l Limits) validate(key string, bad func(key, format string, args ...any)) {
	switch {
	case l.Memory < 0:
		bad(key+".memory", "must not be negative, got %d", l.Memory)
	case l.Memory > 0 && l.Memory < minMemoryLimit:
		bad(key+".memory", "must be at least %s (the sandbox's own processes count against it), got %s",
			bytesize.Format(minMemoryLimit), bytesize.Format(l.Memory))
	}
	switch {
	case l.Processes < 0:
		bad(key+".processes", "must not be negative, got %d", l.Processes)
	case l.Processes > 0 && l.Processes < minProcessLimit:
		bad(key+".processes", "must be at least %d (bwrap, its init, the egress forwarder and their threads count against it), got %d",
			minProcessLimit, l.Processes)
	}
	switch {
	case math.IsNaN(l.CPU) || math.IsInf(l.CPU, 0) || l.CPU < 0:
		bad(key+".cpu", "must be a positive number of cores such as 1.5, got %v", l.CPU)
	case l.CPU > 0 && l.CPU < minCPULimit:
		bad(key+".cpu", "must be at least %v cores, got %v", minCPULimit, l.CPU)
	}
	switch {
	case l.OpenFiles < 0:
		bad(key+".open_files", "must not be negative, got %d", l.OpenFiles)
	case l.OpenFiles > 0 && l.OpenFiles < minOpenFilesLimit:
		bad(key+".open_files", "must be at least %d, got %d", minOpenFilesLimit, l.OpenFiles)
	}
}

// sandboxLimits is the environment's limits as the sandbox takes them.
func (e Environment) sandboxLimits() sandbox.Limits {
	return sandbox.Limits{Memory: e.Limits.Memory, Processes: e.Limits.Processes, CPU: e.Limits.CPU,
		OpenFiles: uint64(max(0, e.Limits.OpenFiles))}
}

// turnProcesses remembers the processes a turn started, to tell after the
// turn whether one went over a limit (the sandbox ended it then).
type turnProcesses struct {
	mu    sync.Mutex
	procs []*sandbox.Process
}

func (t *turnProcesses) add(p *sandbox.Process) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.procs = append(t.procs, p)
}

// limitExceeded is the first limit a process of the turn went over.
func (t *turnProcesses) limitExceeded() *sandbox.LimitError {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.procs {
		if e := p.LimitExceeded(); e != nil {
			return e
		}
	}
	return nil
}

// limitFailure is the session.error of a turn that went over a limit.
func limitFailure(e *sandbox.LimitError, env Environment) *sessionFailure {
	return failuref("the turn exceeded its %s (environment %s)", e.Describe(), env.ID)
}
