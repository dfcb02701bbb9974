package daemon

import (
	"log/slog"
	"strings"

	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
)

// logSessionLimits finds how this host enforces local sessions' limits
// (local.environments[].limits) and logs it: at INFO when every limit
// holds, at WARN naming each one that does not, why, and the way out.
// Never silently: a limit the host cannot enforce lets one session starve
// the daemon and the others.
func logSessionLimits(log *slog.Logger, e sandbox.Enforcement) *sandbox.Enforcement {
	attrs := []any{"memory", orNone(e.Memory), "processes", orNone(e.Processes), "cpu", orNone(e.CPU),
		"open_files", orNone(e.OpenFiles)}
	if e.Cgroup != "" {
		attrs = append(attrs, "cgroup", e.Cgroup)
	}
	if missing := e.Missing(); len(missing) > 0 {
		log.Warn("local sessions' limits NOT ENFORCED: "+strings.Join(missing, ", ")+
			"; one session can exhaust the machine for the daemon and the others. "+
			"Run the daemon as root on a host with the cgroup v1 memory and pids controllers, "+
			"or under systemd with Delegate=yes (cgroup v2)",
			append(attrs, "reason", e.Problem)...)
	} else {
		log.Info("local sessions' limits enforced", attrs...)
	}
	return &e
}

func orNone(how string) string {
	if how == "" {
		return "not enforced"
	}
	return how
}

// sessionLimitsDetail is the /readyz detail of local sessions' limits:
// each limit's mechanism or "not enforced", and why when one is not.
func sessionLimitsDetail(e sandbox.Enforcement) map[string]string {
	out := map[string]string{"memory": orNone(e.Memory), "processes": orNone(e.Processes), "cpu": orNone(e.CPU),
		"open_files": orNone(e.OpenFiles)}
	if e.Problem != "" {
		out["problem"] = e.Problem
	}
	return out
}
