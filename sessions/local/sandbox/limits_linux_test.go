package sandbox

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// needCgroups skips unless this host enforces memory and process limits
// (root on a host with the v1 memory and pids hierarchies, or a delegated
// cgroup v2 group), saying why.
func needCgroups(t *testing.T) Enforcement {
	t.Helper()
	e := LimitsEnforcement()
	if e.Memory == "" || e.Processes == "" {
		t.Skipf("this host does not enforce memory/process limits: %s", e.Problem)
	}
	return e
}

// groupsOf lists the turn groups of session id left in the hierarchies.
func groupsOf(t *testing.T, sessionID string) []string {
	t.Helper()
	h := hostCgroups()
	parents := []string{h.v2}
	for _, d := range h.v1 {
		parents = append(parents, d)
	}
	var out []string
	for _, p := range parents {
		if p == "" {
			continue
		}
		found, _ := filepath.Glob(filepath.Join(p, "sandbox0d-"+sessionID+"-*"))
		out = append(out, found...)
	}
	return out
}

func TestForkBombEndsAtTheProcessLimit(t *testing.T) {
	needCgroups(t)
	bw := needBwrap(t, Config{})
	p, out, err := runLimited(t, bw, Spec{SessionID: "ses_forkbomb", Limits: Limits{Processes: 64}},
		`echo started; bomb() { bomb | bomb & }; bomb 2>/dev/null; wait; sleep 1000`)
	require.Error(t, err, "the tree is killed")
	assert.Equal(t, "started\n", out)
	assert.Equal(t, &LimitError{Limit: "processes", Value: 64}, p.LimitExceeded())
	assert.Empty(t, groupsOf(t, "ses_forkbomb"), "the group is removed with the tree")
}

func TestAllocationEndsAtTheMemoryLimit(t *testing.T) {
	needCgroups(t)
	bw := needBwrap(t, Config{})
	// 4 GiB in one string; the group holds 256 MiB.
	p, out, err := runLimited(t, bw, Spec{SessionID: "ses_alloc", Limits: Limits{Memory: 256 << 20}},
		`echo started; perl -e '$x = "a" x (4 * 1024 * 1024 * 1024); print length($x), "\n"'; echo survived; sleep 1000`)
	require.Error(t, err, "the tree is killed")
	assert.True(t, strings.HasPrefix(out, "started\n"), out)
	assert.NotContains(t, out, "4294967296", "the allocation never completes")
	e := p.LimitExceeded()
	assert.Equal(t, &LimitError{Limit: "memory", Value: 256 << 20}, e)
	assert.Equal(t, "memory limit of 256 MiB", e.Describe())
	assert.Empty(t, groupsOf(t, "ses_alloc"))
}

// The limits land on the group and the rlimit the process runs under,
// with or without a sandbox; a tree within its limits ends normally and
// its group is removed.
func TestLimitsAreSet(t *testing.T) {
	e := needCgroups(t)
	limits := Limits{Memory: 300 << 20, Processes: 77, CPU: 0.5, OpenFiles: 123}

	bw := needBwrap(t, Config{})
	p, out, err := runLimited(t, bw, Spec{SessionID: "ses_limits", Limits: limits},
		`ulimit -n; ulimit -Hn; grep -cv ':/$' /proc/self/cgroup || true`)
	require.NoError(t, err)
	assert.Equal(t, "123\n123\n0\n", out, "open_files inside bubblewrap; its cgroup namespace names no host path")
	assert.Nil(t, p.LimitExceeded())

	// Without a sandbox the process sees the host's /sys: it reads its own
	// groups' settings.
	mounts, err := cgroupMounts()
	require.NoError(t, err)
	files := map[string]string{} // controller → the file with its limit, relative to the group
	if e.Memory == "cgroup v2" {
		files = map[string]string{"": "memory.max pids.max cpu.max"}
	} else {
		files = map[string]string{"memory": "memory.limit_in_bytes", "pids": "pids.max", "cpu": "cpu.cfs_quota_us"}
	}
	script := `ulimit -n; ulimit -Hn`
	for ctrl, names := range files {
		for _, m := range mounts {
			if m.v2 == (ctrl == "") && (ctrl == "" || slices.Contains(m.options, ctrl)) {
				pattern := ":" + ctrl + ":"
				if ctrl == "" {
					pattern = "^0::"
				}
				script += fmt.Sprintf("; d=%s$(grep -E '%s' /proc/self/cgroup | cut -d: -f3); echo \"$d\"; for f in %s; do cat \"$d/$f\"; done",
					m.point, pattern, names)
				break
			}
		}
	}
	p, out, err = runLimited(t, None{}, Spec{SessionID: "ses_limits_none", Limits: limits}, script)
	require.NoError(t, err)
	assert.Nil(t, p.LimitExceeded())
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{"123", "123"}
	if e.Memory == "cgroup v2" {
		want = append(want, "", "314572800", "77", "50000 100000")
	} else {
		for _, ctrl := range []string{"memory", "pids", "cpu"} {
			_ = ctrl
		}
	}
	require.GreaterOrEqual(t, len(lines), 2, out)
	assert.Equal(t, want[:2], lines[:2])
	settings := map[string]string{}
	var dirs []string
	for i := 2; i+1 < len(lines); i += 2 {
		if e.Memory == "cgroup v2" && i+3 < len(lines) {
			dirs = append(dirs, lines[i])
			settings["memory.max"], settings["pids.max"], settings["cpu.max"] = lines[i+1], lines[i+2], lines[i+3]
			break
		}
		dirs = append(dirs, lines[i])
		settings[filepath.Base(filepath.Dir(lines[i]+"/x"))+":"+lines[i+1]] = lines[i+1]
	}
	require.NotEmpty(t, dirs, out)
	for _, d := range dirs {
		assert.Contains(t, filepath.Base(d), "sandbox0d-ses_limits_none-", "the process ran in a group of its own")
		assert.NoDirExists(t, d, "the group is removed once the process ended")
	}
	if e.Memory == "cgroup v2" {
		assert.Equal(t, map[string]string{"memory.max": "314572800", "pids.max": "77", "cpu.max": "50000 100000"}, settings)
	} else {
		assert.Contains(t, lines, "314572800", out)
		assert.Contains(t, lines, "77", out)
		if e.CPU != "" {
			assert.Contains(t, lines, "50000", out)
		}
	}
}

// runLimited runs a shell script through sb and returns the process (for
// LimitExceeded) with its stdout.
func runLimited(t *testing.T, sb Sandbox, spec Spec, script string) (*Process, string, error) {
	t.Helper()
	if spec.Workspace == "" {
		spec.Workspace = t.TempDir()
	}
	spec.Argv = []string{"/bin/sh", "-c", script}
	spec.Env = []string{"PATH=/usr/bin:/bin"}
	p, err := sb.Command(spec)
	require.NoError(t, err)
	var out bytes.Buffer
	p.Cmd.Stdout = &out
	p.Cmd.Stderr = os.Stderr
	require.NoError(t, p.Start())
	err = p.Wait()
	return p, out.String(), err
}

// A daemon that died mid-turn left a group with a straggler in it; the
// next daemon's start kills the straggler and removes the group, and
// leaves a live daemon's groups alone.
func TestStaleGroupsAreSwept(t *testing.T) {
	needCgroups(t)
	h := hostCgroups()
	parent := h.v2
	if parent == "" {
		parent = h.v1["pids"]
	}
	dead := exec.Command("/bin/true")
	require.NoError(t, dead.Run())
	stale := filepath.Join(parent, fmt.Sprintf("sandbox0d-ses_stale-%d-abcd1234-1", dead.Process.Pid))
	live := filepath.Join(parent, "sandbox0d-ses_live-1-abcd1234-1") // pid 1 lives
	require.NoError(t, os.Mkdir(stale, 0o755))
	require.NoError(t, os.Mkdir(live, 0o755))
	defer os.Remove(live)
	straggler := exec.Command("/bin/sh", "-c", `echo $$ > "$1/cgroup.procs" && exec sleep 1000`, "sh", stale)
	require.NoError(t, straggler.Start())
	exited := make(chan error, 1)
	go func() { exited <- straggler.Wait() }()
	require.Eventually(t, func() bool { return len(groupPids(stale)) == 1 }, 10*time.Second, 10*time.Millisecond)

	sweepStale(parent)
	require.Error(t, <-exited, "the straggler is killed")
	assert.NoDirExists(t, stale)
	assert.DirExists(t, live, "a live daemon's group stays")
}

// cgroup v2 cannot run here (the memory and pids controllers are bound to
// v1), so the v2 decision is checked against a directory tree shaped like a
// delegated cgroupfs: the daemon needs the delegation mark (or a namespace
// root), moves itself into <group>/daemon, then enables the controllers for
// its children. What the kernel does with those writes is not tested here.
func TestCgroupV2NeedsDelegationAndMovesIntoALeaf(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the trusted.delegate xattr needs root")
	}
	fake := t.TempDir()
	group := filepath.Join(fake, "system.slice", "sandbox0d.service")
	require.NoError(t, os.MkdirAll(filepath.Join(group, "daemon"), 0o755))
	for file, content := range map[string]string{"cgroup.controllers": "cpuset cpu io memory pids\n",
		"cgroup.subtree_control": "", "daemon/cgroup.procs": ""} {
		require.NoError(t, os.WriteFile(filepath.Join(group, file), []byte(content), 0o644))
	}
	mounts := []mount{{root: "/", point: fake, v2: true}}
	own := map[string]string{"": "/system.slice/sandbox0d.service"}

	h := &cgroupHost{v1: map[string]string{}}
	problem := h.tryV2(mounts, own)
	assert.Contains(t, problem, "is not delegated to the daemon (under systemd: Delegate=yes in the unit)")
	assert.Empty(t, h.v2)

	if err := syscall.Setxattr(group, "trusted.delegate", []byte("1"), 0); err != nil {
		t.Skipf("this file system takes no trusted xattrs: %v", err)
	}
	assert.Empty(t, h.tryV2(mounts, own))
	assert.Equal(t, group, h.v2)
	assert.True(t, h.v2cpu)
	procs, _ := os.ReadFile(filepath.Join(group, "daemon", "cgroup.procs"))
	assert.Equal(t, strconv.Itoa(os.Getpid()), string(procs), "the daemon moved into its leaf")
	control, _ := os.ReadFile(filepath.Join(group, "cgroup.subtree_control"))
	assert.Equal(t, "+memory +pids +cpu", string(control))

	// A group without the memory controller is no use.
	require.NoError(t, os.WriteFile(filepath.Join(group, "cgroup.controllers"), []byte("cpu pids\n"), 0o644))
	h = &cgroupHost{v1: map[string]string{}}
	assert.Contains(t, h.tryV2(mounts, own), "lacks the memory and pids controllers")
}

// open_files above the daemon's own hard limit is held at that limit (it
// could not be raised, and the harness could not exceed it anyway).
func TestOpenFilesAboveTheDaemonsHardLimit(t *testing.T) {
	if LimitsEnforcement().OpenFiles == "" {
		t.Skip("setrlimit does not work here")
	}
	var own syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &own))
	_, out, err := runLimited(t, None{}, Spec{SessionID: "ses_nofile", Limits: Limits{OpenFiles: own.Max + 1000}}, `ulimit -n; ulimit -Hn`)
	require.NoError(t, err)
	want := strconv.FormatUint(own.Max, 10)
	assert.Equal(t, want+"\n"+want+"\n", out)
}
