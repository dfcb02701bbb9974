package systemdtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// container is a Debian root file system booted with systemd as its PID 1
// (systemd-nspawn --boot), in the host's network namespace.
type container struct {
	t       *testing.T
	nspawn  *exec.Cmd
	pid1    int // the container's systemd, as a host pid
	bootLog string
}

// requirements skips the test where it cannot run and returns the cached
// root file system otherwise (building it when it is missing and
// debootstrap is there; CI builds it in .ci/run first).
func requirements(t *testing.T, repo string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("boots a container; skipped in -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: it boots systemd in a systemd-nspawn container (CI runs as root)")
	}
	for _, tool := range []string{"systemd-nspawn", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian packages systemd-container and util-linux; .ci/run installs them)", tool)
		}
	}
	var stderr bytes.Buffer
	cmd := exec.Command("bash", filepath.Join(repo, ".ci/systemd-rootfs"))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 3 {
		t.Skip(strings.TrimSpace(stderr.String()))
	}
	require.NoError(t, err, ".ci/systemd-rootfs: %s", stderr.String())
	return strings.TrimSpace(string(out))
}

// boot starts systemd in the root file system rootfs with the given extra
// nspawn arguments and waits until it has finished booting. rootfs stays
// as it is: it is the read-only lower layer of an overlay whose upper
// layer is a tmpfs (--volatile=overlay), gone when the container stops.
// The container is powered off when the test ends; if the test failed,
// the daemon's journal is printed first.
func boot(t *testing.T, rootfs string, nspawnArgs ...string) *container {
	t.Helper()
	c := &container{t: t, bootLog: filepath.Join(t.TempDir(), "boot.log")}
	logFile, err := os.Create(c.bootLog)
	require.NoError(t, err)
	defer logFile.Close()
	// Unique per boot: the tests of this package boot containers in parallel.
	name := fmt.Sprintf("sandbox0d-test-%d-%d", os.Getpid(), boots.Add(1))
	// --register=no --keep-unit: the host has no system bus to register
	// with. SYSTEMD_NSPAWN_API_VFS_WRITABLE: /proc/sys writable as on a real
	// host (bwrap --disable-userns writes to it).
	args := append([]string{"-q", "-D", rootfs, "--volatile=overlay", "--boot", "--register=no", "--keep-unit", "-M", name}, nspawnArgs...)
	c.nspawn = exec.Command("systemd-nspawn", args...)
	c.nspawn.Env = append(os.Environ(), "SYSTEMD_NSPAWN_API_VFS_WRITABLE=1")
	c.nspawn.Stdout, c.nspawn.Stderr = logFile, logFile
	c.nspawn.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	require.NoError(t, c.nspawn.Start())
	exited := make(chan struct{})
	go func() { _ = c.nspawn.Wait(); close(exited) }()
	t.Cleanup(func() { c.powerOff(exited) })

	require.Eventually(t, func() bool {
		c.pid1 = systemdChild(c.nspawn.Process.Pid)
		return c.pid1 != 0
	}, 30*time.Second, 50*time.Millisecond, "systemd-nspawn started no systemd; boot log:\n%s", c.readBootLog())
	t.Cleanup(func() {
		if t.Failed() {
			c.printJournal()
		}
	})
	// systemctl answers once systemd listens on its private socket;
	// --wait then returns when the boot is over.
	var state string
	require.Eventually(t, func() bool {
		out, _ := c.output(30*time.Second, "systemctl", "is-system-running", "--wait")
		state = strings.TrimSpace(out)
		return state == "running" || state == "degraded"
	}, 60*time.Second, 100*time.Millisecond, "systemd did not finish booting (last state %q); boot log:\n%s", state, c.readBootLog())
	return c
}

// systemdChild finds the container's systemd among nspawn's children.
func systemdChild(nspawn int) int {
	children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", nspawn, nspawn))
	if err != nil {
		return 0
	}
	for _, f := range strings.Fields(string(children)) {
		pid, _ := strconv.Atoi(f)
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(comm)) == "systemd" {
			return pid
		}
	}
	return 0
}

// command is argv run inside the container (all its namespaces), as root.
func (c *container) command(ctx context.Context, argv ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(c.pid1), "-a", "--"}, argv...)...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"}
	cmd.WaitDelay = time.Second
	return cmd
}

// output runs argv in the container and returns its combined output.
func (c *container) output(timeout time.Duration, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := c.command(ctx, argv...).CombinedOutput()
	return string(out), err
}

// run runs argv in the container and fails the test if it fails.
func (c *container) run(timeout time.Duration, argv ...string) string {
	c.t.Helper()
	out, err := c.output(timeout, argv...)
	require.NoError(c.t, err, "in the container: %s\n%s", strings.Join(argv, " "), out)
	return out
}

// path is a path inside the running container as the host reaches it
// (through the container's own mounts: /run, the state directory).
func (c *container) path(inside string) string {
	return filepath.Join(fmt.Sprintf("/proc/%d/root", c.pid1), inside)
}

func (c *container) journal(args ...string) string {
	out, _ := c.output(30*time.Second, append([]string{"journalctl", "-u", "sandbox0d", "-o", "cat", "--no-pager"}, args...)...)
	return out
}

// cursor is the journal's position now: journal("--after-cursor", cursor)
// shows what comes after.
func (c *container) cursor() string {
	c.t.Helper()
	out := c.run(30*time.Second, "journalctl", "-n", "0", "--show-cursor", "--no-pager")
	_, cursor, ok := strings.Cut(out, "-- cursor: ")
	require.True(c.t, ok, "journalctl --show-cursor: %s", out)
	return strings.TrimSpace(cursor)
}

func (c *container) printJournal() {
	status, _ := c.output(30*time.Second, "systemctl", "status", "--no-pager", "sandbox0d")
	c.t.Logf("systemctl status sandbox0d:\n%s\njournalctl -u sandbox0d:\n%s", status, c.journal("-n", "300"))
}

func (c *container) readBootLog() string {
	data, _ := os.ReadFile(c.bootLog)
	if len(data) > 8192 {
		data = data[len(data)-8192:]
	}
	return string(data)
}

// powerOff asks systemd to power the container off (SIGRTMIN+4, which needs
// no bus) and kills nspawn if it has not exited after 30 s.
func (c *container) powerOff(exited <-chan struct{}) {
	if c.pid1 != 0 {
		_ = syscall.Kill(c.pid1, syscall.Signal(sigRTMIN+4))
	} else {
		_ = c.nspawn.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		c.t.Logf("the container did not power off within 30 s; killing systemd-nspawn; boot log:\n%s", c.readBootLog())
		_ = syscall.Kill(-c.nspawn.Process.Pid, syscall.SIGKILL)
		<-exited
	}
}

// boots counts the containers this test binary has booted.
var boots atomic.Int64

// sigRTMIN is glibc's SIGRTMIN (the kernel's 32 plus the two glibc keeps),
// the base of the signals systemd documents.
const sigRTMIN = 34
