package sandbox

import (
	"bytes"
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

	"golang.org/x/sys/unix"
)

// hostSecrets are host files only root may read. None of them is in the
// view; they stay masked as a second layer should an agent's read-only
// paths name a directory holding one (ReadOnly: [/etc]).
var hostSecrets = []string{"/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-",
	"/etc/sudoers", "/etc/sudoers.d", "/etc/ssl/private", "/etc/credstore", "/etc/credstore.encrypted",
	"/etc/security", "/etc/default"}

// hostSecretGlob files are masked file by file (ssh's client config stays).
const hostSecretGlob = "/etc/ssh/ssh_host_*_key"

// Paths inside a limited sandbox.
const (
	// egressSocketInside is where the session's egress socket is mounted.
	egressSocketInside = "/run/sandbox0d/egress.sock"
)

// The descriptors bwrap reads, in Cmd.ExtraFiles order from fd 3.
const (
	infoFD   = 3 // bwrap writes the sandbox's pid 1 here
	argsFD   = 4 // bwrap's options, NUL-separated (--args)
	passwdFD = 5 // the synthesized /etc/passwd
	groupFD  = 6 // the synthesized /etc/group
)

// Bubblewrap confines each process with bwrap.
type Bubblewrap struct {
	bwrap     string
	view      []viewEntry
	hidden    []string
	egress    Egress
	forwarder []string
	log       *slog.Logger
	probeDir  string
}

// newBubblewrap finds bwrap and checks that it can build the sandboxes
// sessions get: a probe process goes through the same argument builder as
// every session's (same namespaces, --hostname, uid mapping, view, data
// descriptors), once with the host network and once with --unshare-net.
func newBubblewrap(cfg Config) (*Bubblewrap, error) {
	name := cfg.Bwrap
	if name == "" {
		name = "bwrap"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return nil, &ProbeError{Bwrap: name, Err: err, NotFound: true}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	b := &Bubblewrap{bwrap: path, view: hostView(), egress: cfg.Egress, forwarder: cfg.Forwarder, log: log, probeDir: cfg.ProbeDir}
	if d, ok := cfg.Egress.(interface{ Dir() string }); ok {
		// Other sessions' egress sockets, should a read-only path hold them.
		cfg.Hidden = append(cfg.Hidden, d.Dir())
	}
	hostKeys, _ := filepath.Glob(hostSecretGlob)
	for _, h := range slices.Concat(hostSecrets, hostKeys, privateInView(b.view), cfg.Hidden) {
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
	timeout := cfg.ProbeTimeout
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	for _, limited := range []bool{false, true} {
		if err := b.probe(limited, timeout); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Name implements Sandbox.
func (*Bubblewrap) Name() string { return string(ModeBubblewrap) }

// Confined implements Sandbox.
func (*Bubblewrap) Confined() bool { return true }

// Command implements Sandbox.
//
// The process runs as uid 1000 ("agent") inside a user namespace in which
// that uid is the only one mapped, onto the daemon's own uid. With a root
// daemon this means the harness owns, inside, every file host root owns:
// with --cap-drop ALL it has no privilege beyond that ownership, and the
// view (an allow-list holding no root-only file) keeps every host-root
// secret out of sight, so ownership opens nothing. bwrap's options reach it
// through a descriptor (--args), so the sandbox's /proc/1/cmdline is
// "bwrap --args 4 -- <harness argv>" and names no masked or host path.
// /proc/self/mountinfo still lists every mount point: the view, the
// program file, the read-only paths, any mask (by the path it covers) and
// the workspace at its host path, which is inside the data dir; that path
// (not its content) is unavoidable while the workspace keeps its host path.
func (b *Bubblewrap) Command(spec Spec) (*Process, error) {
	return b.command(spec, false)
}

// command builds the process; probe builds the probe's (no egress proxy
// behind --unshare-net, no overlap check against the hidden paths).
func (b *Bubblewrap) command(spec Spec, probe bool) (*Process, error) {
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
		if probe || (within(workspace, h) && !within(h, workspace)) {
			continue // the workspace lives in the data dir; it is bound on its own
		}
		if within(h, workspace) || within(workspace, h) {
			return nil, fmt.Errorf("sandbox: workspace %s overlaps %s, which a harness must not see", workspace, h)
		}
	}

	argv := append([]string(nil), spec.Argv...)
	readOnly := make([]string, 0, len(spec.ReadOnly))
	for _, p := range spec.ReadOnly {
		abs, err := filepath.Abs(p)
		if err != nil || underSystemDir(abs) || within(abs, workspace) {
			continue
		}
		for _, h := range b.hidden {
			if within(abs, h) {
				return nil, fmt.Errorf("sandbox: %s is inside %s, which a harness must not see", abs, h)
			}
		}
		readOnly = append(readOnly, abs)
	}
	program, err := resolveProgram(argv[0], dir)
	if err != nil {
		return nil, err
	}
	argv[0] = program
	// The program itself, not its directory: a script's neighbours (the
	// config file next to it, a key) stay out of sight.
	var programBind []string
	if !underSystemDir(program) && !within(program, workspace) && !inAny(program, readOnly) {
		for _, h := range b.hidden {
			if within(program, h) {
				return nil, fmt.Errorf("sandbox: the harness %s is inside %s, which a harness must not see", program, h)
			}
		}
		programBind = append(programBind, "--ro-bind", program, program)
	}

	env := withMarker(spec.Env, spec.SessionID)
	env = setEnv(env, "HOME", home)
	env = setEnv(env, "TMPDIR", "/tmp")
	env = setEnv(env, "USER", harnessUser)
	env = setEnv(env, "LOGNAME", harnessUser)

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
		"--uid", strconv.Itoa(harnessUID), "--gid", strconv.Itoa(harnessGID),
		// bwrap keeps every capability (within its user namespace) when
		// started as root; with them a harness could unmount the masks over
		// hidden paths. No capabilities, and no nested user namespace in
		// which to regain them.
		"--cap-drop", "ALL", "--disable-userns",
	}
	if spec.Network.ThroughProxy() {
		args = append(args, "--unshare-net")
	}
	if spec.Network.ThroughProxy() && !probe {
		if b.egress == nil || len(b.forwarder) == 0 {
			if !spec.Network.Limited {
				return nil, fmt.Errorf("%w: the session's credentials are projected through the egress proxy (environment %s) and this daemon has no egress proxy",
					ErrNetworkPolicy, spec.Network.Environment)
			}
			return nil, fmt.Errorf("%w: environment %s has networking type limited and this daemon has no egress proxy",
				ErrNetworkPolicy, spec.Network.Environment)
		}
		socket, rel, err := b.egress.Listen(spec.SessionID, spec.Network)
		if err != nil {
			return nil, fmt.Errorf("%w: environment %s: starting the egress proxy: %v", ErrNetworkPolicy, spec.Network.Environment, err)
		}
		release = append(release, rel)
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
	if spec.TrustBundle != "" {
		late = append(late, "--ro-bind", spec.TrustBundle, TrustBundleInside)
	}
	for _, e := range b.view {
		switch {
		case e.symlink != "":
			args = append(args, "--symlink", e.symlink, e.path)
		case underSystemDir(e.path):
			args = append(args, "--ro-bind", e.path, e.path)
		default:
			// An /etc entry may come and go after New resolved the view
			// (resolv.conf is often a link into /run): a missing one is
			// skipped rather than failing every session.
			args = append(args, "--ro-bind-try", e.path, e.path)
		}
	}
	args = append(args, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run")
	args = append(args, late...)
	for _, p := range readOnly {
		args = append(args, "--ro-bind", p, p)
	}
	args = append(args, programBind...)
	// The account databases go after any read-only path an agent named
	// (an /etc of its own would otherwise bring the host's back).
	args = append(args, "--perms", "0644", "--ro-bind-data", strconv.Itoa(passwdFD), "/etc/passwd",
		"--perms", "0644", "--ro-bind-data", strconv.Itoa(groupFD), "/etc/group")
	// Hide what lies under a visible directory (a data dir under a
	// read-only path), before the workspace goes in.
	for _, h := range b.hidden {
		if !inView(b.view, h) && !inAny(h, readOnly) {
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
	args = append(args, "--remount-ro", "/", "--info-fd", strconv.Itoa(infoFD))

	var files []*os.File
	closeFiles := func() {
		for _, f := range files {
			f.Close()
		}
	}
	info, infoW, err := os.Pipe()
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	files = append(files, infoW)
	for _, data := range [][]byte{nulJoin(args), passwdFile(home), groupFile()} {
		f, err := dataFile(data)
		if err != nil {
			info.Close()
			closeFiles()
			cleanup()
			return nil, fmt.Errorf("sandbox: passing bwrap its options: %w", err)
		}
		files = append(files, f)
	}

	cmd := exec.Command(b.bwrap, append([]string{"--args", strconv.Itoa(argsFD), "--"}, argv...)...)
	cmd.Env = env
	cmd.Dir = "/"
	cmd.ExtraFiles = files
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &Process{Cmd: cmd}
	var childPID atomic.Int64 // host pid of the sandbox's pid 1, once bwrap said it
	p.afterStart = func(cmd *exec.Cmd) error {
		closeFiles() // the child has its copies
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
		closeFiles()
		info.Close()
		if cmd.Process != nil {
			// bwrap has exited; its pid 1 died with it (--die-with-parent)
			// and took every process of the namespace along.
			_ = signalGroup(cmd.Process.Pid, syscall.SIGKILL)
		}
		cleanup()
	}
	if err := applyLimits(p, spec); err != nil {
		closeFiles() // infoW and the memfds
		info.Close()
		cleanup()
		return nil, err
	}
	return p, nil
}

// nulJoin is the --args format: every argument NUL-terminated.
func nulJoin(args []string) []byte {
	var buf bytes.Buffer
	for _, a := range args {
		buf.WriteString(a)
		buf.WriteByte(0)
	}
	return buf.Bytes()
}

// dataFile is an anonymous memory file holding data, positioned at its
// start, for bwrap to read through an inherited descriptor. A pipe would
// block once its buffer is full (long argument lists); a file on disk
// could be read by others while it exists.
func dataFile(data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate("sandbox0d-bwrap", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "sandbox0d-bwrap")
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(0, 0); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
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

// within reports whether path is dir or inside it (lexically).
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}
