package daemon_test

import (
	"bufio"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The unit shipped before bubblewrap ran under it (3920652): every problem
// it has must still be found, so the check below can fail.
const oldUnitFile = "../testdata/systemd/sandbox0d-3920652.service"

// The shipped unit lets bubblewrap and a JIT run: a static reading of the
// directives that broke them, one reason each. internal/systemdtest boots a
// real systemd with the unit (as root, with systemd-nspawn); this check runs
// everywhere systemd-analyze does, and says which directive is at fault.
func TestSystemdUnitRunsTheSandbox(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd); .ci/run installs it")
	}
	groups := syscallGroups(t)
	assert.Empty(t, sandboxProblems(t, unitFile, groups), "the shipped unit")
	assert.ElementsMatch(t, []string{
		"RestrictNamespaces forbids user", "RestrictNamespaces forbids mnt", "RestrictNamespaces forbids pid",
		"RestrictNamespaces forbids ipc", "RestrictNamespaces forbids uts", "RestrictNamespaces forbids net",
		"RestrictNamespaces forbids cgroup",
		"SystemCallFilter denies mount", "SystemCallFilter denies umount2", "SystemCallFilter denies pivot_root",
		"SystemCallFilter denies capset", "SystemCallFilter denies sethostname",
		"RestrictAddressFamilies denies AF_NETLINK",
		"ProcSubset=pid", "ProtectHostname=yes", "MemoryDenyWriteExecute=yes",
		"ProtectKernelTunables=yes without ReadWritePaths=/proc/sys/user",
		"no Delegate=yes",
	}, sandboxProblems(t, oldUnitFile, groups), "the unit of 3920652")
}

// sandboxProblems lists what in a unit stops bubblewrap (the flags of a
// session and of the start probe), the Claude Code CLI's JIT, or the
// per-session cgroups.
func sandboxProblems(t *testing.T, path string, groups map[string][]string) []string {
	t.Helper()
	d := unitDirectives(t, path)
	last := func(key string) string {
		if v := d[key]; len(v) > 0 {
			return v[len(v)-1]
		}
		return ""
	}
	var problems []string
	allowedNS := func(ns string) bool {
		v := last("RestrictNamespaces")
		switch v {
		case "", "no", "false":
			return true
		case "yes", "true":
			return false
		}
		if list, ok := strings.CutPrefix(v, "~"); ok {
			return !slices.Contains(strings.Fields(list), ns)
		}
		return slices.Contains(strings.Fields(v), ns)
	}
	for _, ns := range []string{"user", "mnt", "pid", "ipc", "uts", "net", "cgroup"} {
		if !allowedNS(ns) {
			problems = append(problems, "RestrictNamespaces forbids "+ns)
		}
	}
	for _, call := range []string{"mount", "umount2", "pivot_root", "capset", "sethostname"} {
		if !syscallAllowed(d["SystemCallFilter"], call, groups) {
			problems = append(problems, "SystemCallFilter denies "+call)
		}
	}
	if f := last("RestrictAddressFamilies"); f != "" {
		list, deny := strings.CutPrefix(f, "~")
		if slices.Contains(strings.Fields(list), "AF_NETLINK") == deny {
			problems = append(problems, "RestrictAddressFamilies denies AF_NETLINK")
		}
	}
	if last("ProcSubset") == "pid" {
		problems = append(problems, "ProcSubset=pid")
	}
	if last("ProtectHostname") == "yes" {
		problems = append(problems, "ProtectHostname=yes")
	}
	if last("MemoryDenyWriteExecute") == "yes" {
		problems = append(problems, "MemoryDenyWriteExecute=yes")
	}
	if last("ProtectKernelTunables") == "yes" && !slices.ContainsFunc(d["ReadWritePaths"], func(v string) bool {
		return slices.Contains(strings.Fields(v), "/proc/sys/user") || slices.Contains(strings.Fields(v), "-/proc/sys/user")
	}) {
		problems = append(problems, "ProtectKernelTunables=yes without ReadWritePaths=/proc/sys/user")
	}
	if last("Delegate") != "yes" {
		problems = append(problems, "no Delegate=yes")
	}
	return problems
}

// syscallAllowed evaluates SystemCallFilter= assignments as systemd does:
// the first decides allow-list or deny-list; later ones add to or remove
// from it.
func syscallAllowed(filters []string, call string, groups map[string][]string) bool {
	if len(filters) == 0 {
		return true
	}
	allowList := !strings.HasPrefix(filters[0], "~")
	allowed := !allowList
	for _, f := range filters {
		items, deny := strings.CutPrefix(f, "~")
		for _, item := range strings.Fields(items) {
			if inGroup(item, call, groups, 0) {
				allowed = !deny
			}
		}
	}
	return allowed
}

func inGroup(item, call string, groups map[string][]string, depth int) bool {
	if item == call {
		return true
	}
	if !strings.HasPrefix(item, "@") || depth > 8 {
		return false
	}
	for _, member := range groups[item] {
		if inGroup(member, call, groups, depth+1) {
			return true
		}
	}
	return false
}

// syscallGroups reads systemd's own syscall sets (systemd-analyze
// syscall-filter), nested sets unexpanded.
func syscallGroups(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("systemd-analyze", "syscall-filter", "--no-pager").Output()
	require.NoError(t, err)
	groups := map[string][]string{}
	var current string
	for _, line := range strings.Split(string(out), "\n") {
		field := strings.TrimSpace(line)
		switch {
		case field == "" || strings.HasPrefix(field, "#"):
		case !strings.HasPrefix(line, " ") && strings.HasPrefix(field, "@"):
			current = field
		case current != "":
			groups[current] = append(groups[current], field)
		}
	}
	require.Contains(t, groups["@privileged"], "pivot_root", "systemd-analyze syscall-filter output not understood")
	return groups
}

// unitDirectives returns every assignment of the unit, by key, in order.
func unitDirectives(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	d := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") || strings.HasPrefix(line, "[") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if ok {
			d[key] = append(d[key], value)
		}
	}
	require.NoError(t, sc.Err())
	return d
}
