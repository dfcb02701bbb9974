package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// systemDirs are the host directories every sandboxed process sees,
// read-only. A symlink among them (merged /usr) is recreated as a symlink.
var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"}

// hostSecrets are host files under the visible system directories that
// only root may read. A daemon running as root (the shipped unit does not)
// maps its harnesses to root's uid on the files they see, so these are
// masked like the daemon's own files.
var hostSecrets = []string{"/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-",
	"/etc/sudoers", "/etc/sudoers.d", "/etc/ssl/private", "/etc/credstore", "/etc/credstore.encrypted"}

// hostSecretGlob files are masked file by file (ssh's client config stays).
const hostSecretGlob = "/etc/ssh/ssh_host_*_key"

// Paths inside a limited sandbox.
const (
	// egressSocketInside is where the session's egress socket is mounted.
	egressSocketInside = "/run/sandbox0d/egress.sock"
)

// Bubblewrap confines each process with bwrap.
type Bubblewrap struct {
	bwrap     string
	hidden    []string
	egress    Egress
	forwarder []string
	log       *slog.Logger
}

// newBubblewrap finds bwrap and checks that it can create the namespaces a
// sandbox needs (user namespaces may be disabled by the kernel).
func newBubblewrap(cfg Config) (*Bubblewrap, error) {
	name := cfg.Bwrap
	if name == "" {
		name = "bwrap"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("%s not found: %w", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	probe := exec.CommandContext(ctx, path, "--die-with-parent", "--unshare-all", "--unshare-user", "--cap-drop", "ALL", "--disable-userns", "--ro-bind", "/", "/",
		"--proc", "/proc", "--dev", "/dev", "--", "/bin/sh", "-c", "exit 0")
	probe.Env = []string{"PATH=/usr/bin:/bin"}
	if out, err := probe.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s cannot create a sandbox here: %v: %s", path, err, strings.TrimSpace(string(out)))
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	b := &Bubblewrap{bwrap: path, egress: cfg.Egress, forwarder: cfg.Forwarder, log: log}
	if d, ok := cfg.Egress.(interface{ Dir() string }); ok {
		// Other sessions' egress sockets, should a harness directory
		// contain them.
		cfg.Hidden = append(cfg.Hidden, d.Dir())
	}
	hostKeys, _ := filepath.Glob(hostSecretGlob)
	for _, h := range slices.Concat(hostSecrets, hostKeys, cfg.Hidden) {
		if h == "" {
			continue
		}
		if abs, err := filepath.Abs(h); err == nil {
			b.hidden = append(b.hidden, abs)
			if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
				b.hidden = append(b.hidden, real)
			}
		}
	}
	return b, nil
}

// Name implements Sandbox.
func (*Bubblewrap) Name() string { return string(ModeBubblewrap) }

// Confined implements Sandbox.
func (*Bubblewrap) Confined() bool { return true }

// Command implements Sandbox.
func (b *Bubblewrap) Command(spec Spec) (*Process, error) {
	if err := checkSpec(spec); err != nil {
		return nil, err
	}
	workspace, err := filepath.Abs(spec.Workspace)
	if err != nil {
		return nil, fmt.Errorf("sandbox: workspace: %w", err)
	}
	dir := spec.Dir
	if dir == "" {
		dir = workspace
	}
	if !within(dir, workspace) {
		return nil, fmt.Errorf("sandbox: working directory %s is outside the workspace %s", dir, workspace)
	}
	home := spec.Home
	if home == "" {
		home = workspace
	}
	if !within(home, workspace) {
		return nil, fmt.Errorf("sandbox: HOME %s is outside the workspace %s", home, workspace)
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("sandbox: creating HOME: %w", err)
	}
	for _, h := range b.hidden {
		if within(workspace, h) && !within(h, workspace) {
			continue // the workspace lives in the data dir; it is bound on its own
		}
		if within(h, workspace) || within(workspace, h) {
			return nil, fmt.Errorf("sandbox: workspace %s overlaps %s, which a harness must not see", workspace, h)
		}
	}

	argv := append([]string(nil), spec.Argv...)
	readOnly := append([]string(nil), spec.ReadOnly...)
	program, err := resolveProgram(argv[0], dir)
	if err != nil {
		return nil, err
	}
	if filepath.Dir(program) == "/" {
		return nil, fmt.Errorf("sandbox: the harness %s lives in /, which cannot be made visible; move it into a directory of its own", program)
	}
	argv[0] = program
	readOnly = append(readOnly, programDirs(program)...)

	env := withMarker(spec.Env, spec.SessionID)
	env = setEnv(env, "HOME", home)
	env = setEnv(env, "TMPDIR", "/tmp")

	var release []func()
	cleanup := func() {
		for i := len(release) - 1; i >= 0; i-- {
			release[i]()
		}
	}

	var late []string // mounts that go after /tmp and /run are fresh
	args := []string{
		"--die-with-parent", "--new-session",
		"--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
		"--hostname", "sandbox0d",
		// bwrap keeps every capability (within its user namespace) when
		// started as root; with them a harness could unmount the masks over
		// hidden paths. No capabilities, and no nested user namespace in
		// which to regain them.
		"--cap-drop", "ALL", "--disable-userns",
	}
	if spec.Network.Limited {
		if b.egress == nil || len(b.forwarder) == 0 {
			return nil, fmt.Errorf("%w: environment %s has networking type limited and this daemon has no egress proxy",
				ErrNetworkPolicy, spec.Network.Environment)
		}
		socket, rel, err := b.egress.Listen(spec.SessionID, spec.Network)
		if err != nil {
			return nil, fmt.Errorf("%w: environment %s: starting the egress proxy: %v", ErrNetworkPolicy, spec.Network.Environment, err)
		}
		release = append(release, rel)
		args = append(args, "--unshare-net")
		late = append(late, "--ro-bind", socket, egressSocketInside)
		proxyURL := "http://" + ProxyListenAddr
		for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"} {
			env = setEnv(env, k, proxyURL)
		}
		for _, k := range []string{"NO_PROXY", "no_proxy"} {
			env = setEnv(env, k, "")
		}
		fwd, err := resolveProgram(b.forwarder[0], "/")
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("%w: the egress forwarder: %v", ErrNetworkPolicy, err)
		}
		late = append(late, "--ro-bind", fwd, fwd)
		prefix := append([]string{fwd}, b.forwarder[1:]...)
		argv = append(append(prefix, "--socket", egressSocketInside, "--listen", ProxyListenAddr, "--"), argv...)
	}
	for _, d := range systemDirs {
		fi, err := os.Lstat(d)
		switch {
		case err != nil:
			continue
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(d)
			if err != nil {
				continue
			}
			args = append(args, "--symlink", target, d)
		case fi.IsDir():
			args = append(args, "--ro-bind", d, d)
		}
	}
	args = append(args, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run")
	args = append(args, late...)
	for _, p := range readOnly {
		abs, err := filepath.Abs(p)
		if err != nil || underSystemDir(abs) || within(abs, workspace) {
			continue
		}
		for _, h := range b.hidden {
			if within(abs, h) {
				cleanup()
				return nil, fmt.Errorf("sandbox: %s is inside %s, which a harness must not see", abs, h)
			}
		}
		args = append(args, "--ro-bind", abs, abs)
	}
	// Hide what lies under a visible directory (a config file in /etc, a
	// data dir under a harness's directory), before the workspace goes in.
	for _, h := range b.hidden {
		if !b.visible(h, readOnly) {
			continue
		}
		fi, err := os.Stat(h)
		switch {
		case err != nil:
			continue
		case fi.IsDir():
			args = append(args, "--tmpfs", h)
		default:
			args = append(args, "--ro-bind", "/dev/null", h)
		}
	}
	args = append(args, "--bind", workspace, workspace, "--chdir", dir)
	// The root bwrap builds the tree in is a tmpfs; read-only, the only
	// writable places are the workspace and the private /tmp.
	args = append(args, "--remount-ro", "/")

	info, infoW, err := os.Pipe()
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	args = append(args, "--info-fd", "3", "--")
	args = append(args, argv...)

	cmd := exec.Command(b.bwrap, args...)
	cmd.Env = env
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{infoW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &Process{Cmd: cmd}
	var childPID atomic.Int64 // host pid of the sandbox's pid 1, once bwrap said it
	p.afterStart = func(cmd *exec.Cmd) error {
		infoW.Close()
		var msg struct {
			ChildPID int `json:"child-pid"`
		}
		if err := json.NewDecoder(info).Decode(&msg); err == nil {
			childPID.Store(int64(msg.ChildPID))
		}
		info.Close()
		return nil
	}
	p.signal = func(sig syscall.Signal) error {
		child := int(childPID.Load())
		if sig == syscall.SIGKILL || child == 0 {
			// Killing the sandbox's pid 1 ends its whole PID namespace.
			if child > 0 {
				_ = syscall.Kill(child, syscall.SIGKILL)
			}
			return signalGroup(cmd.Process.Pid, sig)
		}
		signalNamespace(child, sig)
		return nil
	}
	p.finish = func() {
		infoW.Close()
		info.Close()
		if cmd.Process != nil {
			// bwrap has exited; its pid 1 died with it (--die-with-parent)
			// and took every process of the namespace along.
			_ = signalGroup(cmd.Process.Pid, syscall.SIGKILL)
		}
		cleanup()
	}
	if err := applyLimits(p, spec); err != nil {
		infoW.Close()
		info.Close()
		cleanup()
		return nil, err
	}
	return p, nil
}

// visible reports whether a host path shows inside the sandbox: under a
// system directory or an extra read-only path.
func (b *Bubblewrap) visible(path string, readOnly []string) bool {
	if underSystemDir(path) {
		return true
	}
	for _, p := range readOnly {
		if within(path, p) {
			return true
		}
	}
	return false
}

// signalNamespace signals every process in the PID namespace whose pid 1 is
// init (a host pid), except init itself: bwrap's init exits when the
// harness does, and the namespace ends with it.
func signalNamespace(init int, sig syscall.Signal) {
	ns, err := os.Readlink("/proc/" + strconv.Itoa(init) + "/ns/pid")
	if err != nil {
		return
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == init {
			continue
		}
		if other, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil && other == ns {
			_ = syscall.Kill(pid, sig)
		}
	}
}

// resolveProgram finds the program the way exec.Command would outside the
// sandbox: a bare name in the daemon's PATH, a relative path against dir.
func resolveProgram(name, dir string) (string, error) {
	if !strings.Contains(name, "/") {
		p, err := exec.LookPath(name)
		if err != nil {
			return "", err
		}
		return filepath.Abs(p)
	}
	if !filepath.IsAbs(name) {
		name = filepath.Join(dir, name)
	}
	return filepath.Clean(name), nil
}

// programDirs are the directories a program needs visible: the one it is
// named in and, for a symlink, the one it resolves to.
func programDirs(program string) []string {
	dirs := []string{filepath.Dir(program)}
	if real, err := filepath.EvalSymlinks(program); err == nil && filepath.Dir(real) != dirs[0] {
		dirs = append(dirs, filepath.Dir(real))
	}
	return dirs
}

func underSystemDir(path string) bool {
	for _, d := range systemDirs {
		if within(path, d) {
			return true
		}
	}
	return false
}

// within reports whether path is dir or inside it (lexically).
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}
