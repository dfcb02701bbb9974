package sandbox

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
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

// groupSeq makes group names unique within the daemon; the pid and a
// random part make them unique among daemons (and test binaries) sharing
// a hierarchy.
var (
	groupSeq    atomic.Uint64
	groupRandom = func() string {
		var b [4]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}()
)

// groupName names a turn's group after its session.
func groupName(sessionID string) string {
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, sessionID)
	if len(clean) > 64 {
		clean = clean[:64]
	}
	return fmt.Sprintf("sandbox0d-%s-%d-%s-%d", clean, os.Getpid(), groupRandom, groupSeq.Add(1))
}

// sweepStale removes the turn groups a daemon that is gone left behind (it
// crashed, or was killed, mid-turn), killing what still runs in them. Groups
// of live daemons (other instances, test binaries sharing the hierarchy)
// are left alone: their names carry the daemon's pid.
func sweepStale(parent string) {
	found, _ := filepath.Glob(filepath.Join(parent, "sandbox0d-*"))
	for _, dir := range found {
		parts := strings.Split(filepath.Base(dir), "-")
		if len(parts) < 4 {
			continue
		}
		pid, err := strconv.Atoi(parts[len(parts)-3])
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		(&turnGroup{dirs: map[string]string{"": dir}}).remove()
	}
}

// turnGroup is the control group (one directory per v1 controller, one
// for v2) of one process tree.
type turnGroup struct {
	v2     bool
	dirs   map[string]string // controller → directory; v2: "" → directory
	limits Limits
}

// newTurnGroup makes the group and writes its limits.
func (h *cgroupHost) newTurnGroup(name string, l Limits) (*turnGroup, error) {
	g := &turnGroup{v2: h.v2 != "", dirs: map[string]string{}, limits: l}
	fail := func(err error) (*turnGroup, error) {
		g.remove()
		return nil, err
	}
	if g.v2 {
		dir := filepath.Join(h.v2, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, err
		}
		g.dirs[""] = dir
		settings := [][2]string{}
		if l.Memory > 0 {
			settings = append(settings, [2]string{"memory.max", strconv.FormatInt(l.Memory, 10)},
				[2]string{"memory.swap.max", "0"}, [2]string{"memory.oom.group", "1"})
		}
		if l.Processes > 0 {
			settings = append(settings, [2]string{"pids.max", strconv.FormatInt(l.Processes, 10)})
		}
		if q := cpuQuota(l.CPU); q > 0 && h.v2cpu {
			settings = append(settings, [2]string{"cpu.max", fmt.Sprintf("%d %d", q, cpuPeriod)})
		}
		for _, s := range settings {
			err := writeFile(filepath.Join(dir, s[0]), s[1])
			if err != nil && !(s[0] == "memory.swap.max" && errors.Is(err, os.ErrNotExist)) {
				return fail(fmt.Errorf("setting %s: %w", s[0], err))
			}
		}
		return g, nil
	}
	for _, ctrl := range []string{"memory", "pids", "cpu"} {
		parent := h.v1[ctrl]
		want := ctrl == "memory" && l.Memory > 0 || ctrl == "pids" && l.Processes > 0 || ctrl == "cpu"
		if parent == "" || !want {
			continue
		}
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fail(err)
		}
		g.dirs[ctrl] = dir
		var settings [][2]string
		switch ctrl {
		case "memory":
			settings = [][2]string{{"memory.limit_in_bytes", strconv.FormatInt(l.Memory, 10)},
				{"memory.memsw.limit_in_bytes", strconv.FormatInt(l.Memory, 10)}}
		case "pids":
			settings = [][2]string{{"pids.max", strconv.FormatInt(l.Processes, 10)}}
		case "cpu":
			// Joined even without a quota: the tree then weighs as one
			// task against the daemon's own, however many it runs.
			if q := cpuQuota(l.CPU); q > 0 {
				settings = [][2]string{{"cpu.cfs_period_us", strconv.Itoa(cpuPeriod)}, {"cpu.cfs_quota_us", strconv.FormatInt(q, 10)}}
			}
		}
		for _, s := range settings {
			err := writeFile(filepath.Join(dir, s[0]), s[1])
			if err != nil && !(s[0] == "memory.memsw.limit_in_bytes" && errors.Is(err, os.ErrNotExist)) {
				return fail(fmt.Errorf("setting %s: %w", s[0], err))
			}
		}
	}
	return g, nil
}

// cpuPeriod is the CFS period, in microseconds, quotas are set against.
const cpuPeriod = 100_000

// cpuQuota is the quota per period for cpus, or 0 for none (not set, or
// at least every CPU of the machine).
func cpuQuota(cpus float64) int64 {
	if cpus <= 0 || cpus >= float64(runtime.NumCPU()) {
		return 0
	}
	return max(1000, int64(cpus*cpuPeriod))
}

// paths are the directories a process joins.
func (g *turnGroup) paths() []string {
	var out []string
	for _, d := range g.dirs {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// exceeded reports the limit the tree went over, if any: an OOM kill in
// the group (memory), or a fork refused at pids.max (processes).
func (g *turnGroup) exceeded() *LimitError {
	memDir, oomFile := g.dirs["memory"], "memory.oom_control"
	pidsDir := g.dirs["pids"]
	if g.v2 {
		memDir, oomFile, pidsDir = g.dirs[""], "memory.events", g.dirs[""]
	}
	if g.limits.Memory > 0 && memDir != "" && counter(filepath.Join(memDir, oomFile), "oom_kill") > 0 {
		return &LimitError{Limit: "memory", Value: g.limits.Memory}
	}
	if g.limits.Processes > 0 && pidsDir != "" && counter(filepath.Join(pidsDir, "pids.events"), "max") > 0 {
		return &LimitError{Limit: "processes", Value: g.limits.Processes}
	}
	return nil
}

// counter reads "key N" from a flat-keyed cgroup file; 0 when absent.
func counter(file, key string) int64 {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(" "))
		if ok && string(k) == key {
			n, _ := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			return n
		}
	}
	return 0
}

// kill SIGKILLs every process in the group: cgroup.kill on v2 (Linux
// 5.14), else every pid listed, until none is left or a few seconds pass.
func (g *turnGroup) kill() {
	if g.v2 {
		if writeFile(filepath.Join(g.dirs[""], "cgroup.kill"), "1") == nil {
			return
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, dir := range g.paths() {
		for time.Now().Before(deadline) {
			pids := groupPids(dir)
			if len(pids) == 0 {
				break
			}
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			time.Sleep(5 * time.Millisecond) // the kernel takes the killed out of the group as they exit
		}
	}
}

func groupPids(dir string) []int {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var out []int
	for f := range strings.FieldsSeq(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			out = append(out, pid)
		}
	}
	return out
}

// remove kills what is left in the group and removes its directories. A
// group whose last processes are still exiting is retried for a while.
func (g *turnGroup) remove() {
	g.kill()
	deadline := time.Now().Add(5 * time.Second)
	for _, dir := range g.paths() {
		for {
			err := os.Remove(dir)
			if err == nil || errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond) // EBUSY until the exiting tasks are gone
		}
	}
}

// writeFile writes one value to an existing control file.
func writeFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
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
