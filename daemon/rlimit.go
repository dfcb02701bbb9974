package daemon

import (
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// raiseFileLimit makes sure the daemon may open as many files as its hard
// RLIMIT_NOFILE allows, and logs the limit in force. Go (1.19+) already
// raises the soft limit to the hard one (minus one) when the process
// starts, and restores the original soft limit for the processes it starts,
// so harnesses keep the usual 1024. It cannot when the hard limit is
// "unlimited" (the kernel caps it at fs.nr_open); only then is the limit
// set here, to fs.nr_open, and harnesses inherit it (their own limits, if
// any, come from the sandbox).
func raiseFileLimit(log *slog.Logger) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("reading the open-file limit (RLIMIT_NOFILE)", "error", err)
		return
	}
	raisedBy := "go runtime"
	if lim.Cur+1 < lim.Max {
		want := lim.Max
		if nrOpen := readNrOpen(); nrOpen > 0 && want > nrOpen {
			want = nrOpen
		}
		if want > lim.Cur {
			next := syscall.Rlimit{Cur: want, Max: lim.Max}
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next); err != nil {
				log.Warn("raising the open-file limit (RLIMIT_NOFILE) to its hard limit failed; connections may run short",
					"soft", lim.Cur, "hard", lim.Max, "error", err)
			} else {
				lim.Cur = want
				raisedBy = "sandbox0d"
			}
		}
	}
	log.Info("open-file limit", "soft", lim.Cur, "hard", lim.Max, "raised_by", raisedBy,
		"hint", "LimitNOFILE= in the unit sets the hard limit; max_connections and local.egress.max_connections_per_session keep use below it")
}

// readNrOpen is fs.nr_open, the most a process may set; 0 if unknown.
func readNrOpen() uint64 {
	data, err := os.ReadFile("/proc/sys/fs/nr_open")
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	return n
}
