package sandbox

// One turn's control group: named, made with its limits, checked for an
// OOM kill or a refused fork, emptied and removed.

import (
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
	"sync/atomic"
	"syscall"
	"time"
)

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
