package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"
)

// Control groups hold each limited process tree: one group per prepared
// process (a turn's harness), made before it starts, removed after it ends.
//
// cgroup v2 is used when the daemon's own group is delegated to it (systemd:
// Delegate=yes, which marks the group with the trusted.delegate or
// user.delegate xattr; or the group is the root of a cgroup namespace, as in
// a container) and has the memory and pids controllers. Because a v2 group
// with controllers enabled for its children may hold no processes itself,
// the daemon first moves itself into a leaf, <own group>/daemon; the turns'
// groups are its siblings. Otherwise the v1 memory, pids and cpu hierarchies
// are used where they are mounted and writable (root on a v1 or hybrid
// host), each turn's group a child of the daemon's own group in each.

// cgroupHost is what this host offers, found once per process.
type cgroupHost struct {
	// v2 is the delegated v2 group the turns' groups are made in; "" when
	// v2 is not used.
	v2 string
	// v2cpu tells whether the cpu controller is enabled below v2.
	v2cpu bool
	// v1 maps a v1 controller (memory, pids, cpu) to the directory the
	// turns' groups are made in.
	v1 map[string]string
	// rlimit tells whether setrlimit works (a seccomp filter such as
	// systemd's SystemCallFilter=~@resources refuses it).
	rlimit bool
	// problems say why what is missing is missing.
	problems []string
}

// hostCgroups is found at the first use: the daemon logs it at startup,
// before any session, so the move into the v2 leaf happens then.
var hostCgroups = sync.OnceValue(detectCgroups)

// mount is one cgroup file system from /proc/self/mountinfo.
type mount struct {
	root, point string
	v2          bool
	options     []string // super options: the v1 controllers
}

func detectCgroups() *cgroupHost {
	h := &cgroupHost{v1: map[string]string{}}
	h.rlimit = rlimitWorks()
	if !h.rlimit {
		h.problems = append(h.problems, "setrlimit is refused (a seccomp filter: under systemd, SystemCallFilter=~@resources)")
	}
	mounts, err := cgroupMounts()
	if err != nil {
		h.problems = append(h.problems, "reading /proc/self/mountinfo: "+err.Error())
		return h
	}
	own, err := ownCgroups()
	if err != nil {
		h.problems = append(h.problems, "reading /proc/self/cgroup: "+err.Error())
		return h
	}
	v2problem := h.tryV2(mounts, own)
	if h.v2 != "" {
		sweepStale(h.v2)
		return h
	}
	for _, ctrl := range []string{"memory", "pids", "cpu"} {
		h.tryV1(mounts, own, ctrl)
		if d := h.v1[ctrl]; d != "" {
			sweepStale(d)
		}
	}
	if h.v1["memory"] == "" || h.v1["pids"] == "" {
		if v2problem != "" {
			h.problems = append(h.problems, v2problem)
		}
		var missing []string
		for _, c := range []string{"memory", "pids", "cpu"} {
			if h.v1[c] == "" {
				missing = append(missing, c)
			}
		}
		h.problems = append(h.problems, fmt.Sprintf("no writable cgroup v1 hierarchy for %s (uid %d)", strings.Join(missing, ", "), os.Geteuid()))
	}
	return h
}

// tryV2 sets h.v2 when the daemon's v2 group is delegated and usable, or
// says why not.
func (h *cgroupHost) tryV2(mounts []mount, own map[string]string) string {
	path, ok := own[""]
	if !ok {
		return "no cgroup v2 group"
	}
	dir := ""
	for _, m := range mounts {
		if m.v2 {
			if d, ok := under(m, path); ok {
				dir = d
				break
			}
		}
	}
	if dir == "" {
		return "cgroup v2 is not mounted"
	}
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return "cgroup v2: " + err.Error()
	}
	controllers := strings.Fields(string(data))
	if !slices.Contains(controllers, "memory") || !slices.Contains(controllers, "pids") {
		return fmt.Sprintf("cgroup v2 group %s lacks the memory and pids controllers (it has: %s)", dir, strings.Join(controllers, " "))
	}
	if path != "/" && !delegated(dir) {
		return fmt.Sprintf("cgroup v2 group %s is not delegated to the daemon (under systemd: Delegate=yes in the unit)", dir)
	}
	// No internal processes: the daemon moves into a leaf of its own before
	// its group enables controllers for the turns' groups.
	leaf := filepath.Join(dir, "daemon")
	if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "cgroup v2: " + err.Error()
	}
	if err := writeFile(filepath.Join(leaf, "cgroup.procs"), strconv.Itoa(os.Getpid())); err != nil {
		return "cgroup v2: moving the daemon into " + leaf + ": " + err.Error()
	}
	enable := "+memory +pids"
	if slices.Contains(controllers, "cpu") {
		enable += " +cpu"
		h.v2cpu = true
	}
	if err := writeFile(filepath.Join(dir, "cgroup.subtree_control"), enable); err != nil {
		return "cgroup v2: enabling " + enable + " in " + dir + ": " + err.Error()
	}
	h.v2 = dir
	return ""
}

// delegated reports whether systemd marked the group as delegated.
func delegated(dir string) bool {
	buf := make([]byte, 8)
	for _, name := range []string{"trusted.delegate", "user.delegate"} {
		if n, err := syscall.Getxattr(dir, name, buf); err == nil && string(buf[:n]) == "1" {
			return true
		}
	}
	return false
}

// tryV1 records the v1 directory of ctrl when the daemon can make groups
// in it.
func (h *cgroupHost) tryV1(mounts []mount, own map[string]string, ctrl string) {
	path, ok := own[ctrl]
	if !ok {
		return
	}
	for _, m := range mounts {
		if m.v2 || !slices.Contains(m.options, ctrl) {
			continue
		}
		dir, ok := under(m, path)
		if !ok {
			continue
		}
		probe := filepath.Join(dir, groupName("probe"))
		if err := os.Mkdir(probe, 0o755); err != nil {
			return
		}
		_ = os.Remove(probe)
		h.v1[ctrl] = dir
		return
	}
}

// under is the directory of the group path in mount m.
func under(m mount, path string) (string, bool) {
	rel, err := filepath.Rel(m.root, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	return filepath.Join(m.point, rel), true
}

func cgroupMounts() ([]mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(tail) < 3 {
			continue
		}
		m := mount{root: unescapeMount(fields[3]), point: unescapeMount(fields[4])}
		switch tail[0] {
		case "cgroup2":
			m.v2 = true
		case "cgroup":
			m.options = strings.Split(tail[2], ",")
		default:
			continue
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ownCgroups maps each v1 controller, and "" for v2, to the daemon's group.
func ownCgroups() (map[string]string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for c := range strings.SplitSeq(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, nil
}

// rlimitWorks sets RLIMIT_NOFILE to what it is (through prlimit64, so Go's
// own bookkeeping of the limit is left alone) to see whether a seccomp
// filter allows it.
func rlimitWorks() bool {
	var cur syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &cur); err != nil {
		return false
	}
	_, _, errno := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, 0, syscall.RLIMIT_NOFILE,
		uintptr(unsafe.Pointer(&cur)), 0, 0, 0)
	return errno == 0
}

// LimitsEnforcement says how this host enforces the limits of Spec.Limits.
// The first call decides (and, on a delegated cgroup v2, moves the daemon
// into its leaf group); the daemon calls it at startup and logs it.
func LimitsEnforcement() Enforcement {
	h := hostCgroups()
	var e Enforcement
	switch {
	case h.v2 != "":
		e.Memory, e.Processes, e.Cgroup = "cgroup v2", "cgroup v2", h.v2
		if h.v2cpu {
			e.CPU = "cgroup v2"
		}
	default:
		var dirs []string
		for ctrl, field := range map[string]*string{"memory": &e.Memory, "pids": &e.Processes, "cpu": &e.CPU} {
			if d := h.v1[ctrl]; d != "" {
				*field = "cgroup v1"
				dirs = append(dirs, d)
			}
		}
		slices.Sort(dirs)
		e.Cgroup = strings.Join(dirs, " ")
	}
	if h.rlimit {
		e.OpenFiles = "rlimit"
	}
	if len(e.Missing()) > 0 {
		e.Problem = strings.Join(h.problems, "; ")
	}
	return e
}

// HostMemory is the memory the daemon can count on, in bytes: the
// machine's RAM, or the memory limit of the daemon's own cgroup when that
// is lower; 0 when unknown.
func HostMemory() int64 {
	var info syscall.Sysinfo_t
	if err := syscall.Sysinfo(&info); err != nil {
		return 0
	}
	total := int64(info.Totalram) * int64(info.Unit)
	own, err := ownCgroups()
	if err != nil {
		return total
	}
	mounts, _ := cgroupMounts()
	for _, m := range mounts {
		var file, path string
		switch {
		case m.v2 && own[""] != "":
			file, path = "memory.max", own[""]
		case slices.Contains(m.options, "memory"):
			file, path = "memory.limit_in_bytes", own["memory"]
		default:
			continue
		}
		dir, ok := under(m, path)
		if !ok {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil && n > 0 && n < total {
			total = n
		}
	}
	return total
}
