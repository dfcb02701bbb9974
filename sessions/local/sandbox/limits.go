package sandbox

import (
	"strconv"

	"github.com/sandbox0/sandbox0d/internal/bytesize"
)

// Limits bound the resources of one prepared process and everything it
// starts (a turn's harness tree). The zero value of a field means no limit
// from this package (what the daemon's own limits allow).
type Limits struct {
	// Memory is the most memory, in bytes, the tree may use (RAM; swap is
	// not a way around it). Over it the kernel's OOM killer ends a process
	// of the tree, and the sandbox then ends the rest.
	Memory int64
	// Processes is the most tasks (processes and threads) the tree may
	// have at once. A fork past it fails, and the sandbox ends the tree.
	Processes int64
	// CPU is how many CPUs' worth of time the tree may use (1.5 = one and a
	// half cores); 0 or at least the machine's CPU count means no quota.
	CPU float64
	// OpenFiles is RLIMIT_NOFILE (soft and hard) of every process of the
	// tree.
	OpenFiles uint64
}

// IsZero reports whether no limit is set.
func (l Limits) IsZero() bool { return l == Limits{} }

// needsCgroup reports whether the limits need a control group.
func (l Limits) needsCgroup() bool { return l.Memory > 0 || l.Processes > 0 || l.CPU > 0 }

// LimitError says which limit a process tree went over; the sandbox ended
// the tree because of it. Process.LimitExceeded returns it.
type LimitError struct {
	// Limit is "memory" or "processes".
	Limit string
	// Value is the limit: bytes for memory, a count for processes.
	Value int64
}

// Describe names the limit with its value: "memory limit of 256 MiB",
// "process limit of 64".
func (e *LimitError) Describe() string {
	if e.Limit == "memory" {
		return "memory limit of " + bytesize.Format(e.Value)
	}
	return "process limit of " + strconv.FormatInt(e.Value, 10)
}

func (e *LimitError) Error() string { return "exceeded its " + e.Describe() }

// Enforcement says how this host enforces each kind of limit: a mechanism
// ("cgroup v2", "cgroup v1", "rlimit") or "" when it cannot.
type Enforcement struct {
	Memory, Processes, CPU, OpenFiles string
	// Cgroup is where the turns' control groups are made (directories),
	// for the startup log.
	Cgroup string
	// Problem says why a limit is not enforced, with the way out; "" when
	// every limit is.
	Problem string
}

// Missing lists the config names of the limits this host cannot enforce.
func (e Enforcement) Missing() []string {
	var out []string
	for _, l := range []struct{ name, how string }{
		{"memory", e.Memory}, {"processes", e.Processes}, {"cpu", e.CPU}, {"open_files", e.OpenFiles},
	} {
		if l.how == "" {
			out = append(out, l.name)
		}
	}
	return out
}
