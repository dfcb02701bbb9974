// Package sandbox confines the processes a local session runs (its harness,
// every turn of it). It turns a process Spec into a ready-to-start Process:
// under bubblewrap the process sees an allow-list of the host (the system's
// program and library directories and a named set of /etc files
// read-only, a synthesized passwd and group, its own program and the
// package directories it is given) and its own workspace read-write, as an
// unprivileged user, in fresh
// PID/IPC/UTS/user/cgroup namespaces (and a network namespace of its own when
// the environment's network is limited); under none it runs as the daemon's
// own user with the host's filesystem and network, confined only by a process
// group.
//
// Every harness process of a local session is started through a Sandbox and
// nothing else, so the confinement is decided in one place. The package knows
// nothing about sessions beyond the Spec: callers (sessions/local and the
// harness implementations it runs) build the Spec, set the Process's stdio,
// and call Start and Wait.
package sandbox

import (
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Mode is the value of the local.sandbox config key.
type Mode string

const (
	// ModeAuto is bubblewrap on Linux, where the daemon refuses to start
	// when bwrap does not work (it never degrades to none silently), and
	// none with a loud warning on other systems, which have no sandbox.
	// The default.
	ModeAuto Mode = "auto"
	// ModeBubblewrap requires bwrap; the daemon refuses to start without it.
	ModeBubblewrap Mode = "bubblewrap"
	// ModeNone runs harnesses unconfined, as the daemon's user.
	ModeNone Mode = "none"
)

// DefaultProbeTimeout bounds each bwrap run New makes to check that
// sandboxes work here.
const DefaultProbeTimeout = 10 * time.Second

// DebianPackage is the package that provides bwrap, named in errors.
const DebianPackage = "bubblewrap"

// Network is the network policy of the environment a process runs in, in
// the official environment config shape (networking.type …).
type Network struct {
	// Limited is networking.type limited: the process gets a network
	// namespace of its own whose only way out is the daemon's egress proxy.
	// false is unrestricted: the host network, unless Proxied.
	Limited bool
	// Proxied, on an unrestricted network, still gives the process a
	// network namespace of its own behind the egress proxy, whose policy
	// is then open (any host) but keeps refusing internal addresses that
	// AllowedHosts or CredentialHosts do not name. Set for the turns of a
	// session holding projected credentials: the proxy can only substitute
	// what passes through it.
	Proxied bool
	// CredentialHosts are the hosts the session's credentials are scoped
	// to. On a Proxied network they reach internal addresses like
	// AllowedHosts entries do (the operator or API user named them; the
	// harness did not). Ignored otherwise.
	CredentialHosts      []string
	AllowedHosts         []string
	AllowPackageManagers bool
	AllowMCPServers      bool
	// MCPServerHosts are the hosts of the agent's MCP servers, allowed when
	// AllowMCPServers is set. Local agents declare none today.
	MCPServerHosts []string
	// Environment names the policy in denials and errors.
	Environment string
}

// ThroughProxy reports whether the process's only way out is the egress
// proxy (a network namespace of its own): limited, or unrestricted but
// Proxied.
func (n Network) ThroughProxy() bool { return n.Limited || n.Proxied }

// Spec is one process to run for a session.
type Spec struct {
	// SessionID marks every process of the session (logs, straggler search
	// without a sandbox, the egress proxy's log lines).
	SessionID string
	// Argv is the program and its arguments. A bare name is looked up in the
	// daemon's PATH; a relative path with a slash is relative to Dir.
	Argv []string
	// Dir is the working directory; it must be Workspace or inside it.
	Dir string
	// Env is the whole environment of the process; nothing of the daemon's
	// own environment is added (the sandbox may override HOME, TMPDIR and
	// the proxy variables, see Process).
	Env []string
	// Workspace is the session's workspace, the only host path the process
	// may write.
	Workspace string
	// Home becomes HOME inside a sandbox; it must be inside Workspace and is
	// created if missing. Empty means Workspace. Without a sandbox HOME is
	// whatever Env says.
	Home string
	// ReadOnly are extra host paths the process may read, such as the
	// package directory of the harness's program (the program file itself
	// is added on its own, never its directory).
	ReadOnly []string
	// Network is the environment's network policy.
	Network Network
	// TrustBundle, when set, is a host file of trusted CA certificates
	// (the system's plus the egress proxy's CA) bound read-only at
	// TrustBundleInside; only bubblewrap uses it.
	TrustBundle string
	// Limits bound the process and everything it starts (see Limits).
	Limits Limits
}

// TrustBundleInside is where a sandbox sees Spec.TrustBundle (a fresh
// /run, next to the egress socket, so no host directory is shadowed).
const TrustBundleInside = "/run/sandbox0d/ca-bundle.pem"

// Sandbox prepares confined processes. Implementations are safe for
// concurrent use.
type Sandbox interface {
	// Name is "bubblewrap" or "none", for logs and the manual's vocabulary (docs/local-sessions.md).
	Name() string
	// Confined reports whether processes are isolated from the host (false
	// for none).
	Confined() bool
	// Command prepares spec. The caller may set the returned Process's
	// Cmd.Stdin/Stdout/Stderr (or use its StdinPipe…) and nothing else of
	// Cmd, then calls Start and Wait (or Close if it never starts it).
	// A limited network that cannot be enforced is an error wrapping
	// ErrNetworkPolicy: sessions fail closed.
	Command(spec Spec) (*Process, error)
}

// ErrNetworkPolicy is wrapped by errors of Command when a limited network
// cannot be enforced; the session must fail, never run with an open network.
var ErrNetworkPolicy = errors.New("the environment's limited network policy cannot be enforced")

// Process is a prepared process. Start, Signal and Wait may be called from
// different goroutines; Wait (or Close) must be called exactly once it is
// prepared.
type Process struct {
	Cmd *exec.Cmd

	// Set by the implementation.
	afterStart func(*exec.Cmd) error      // after a successful Cmd.Start
	signal     func(syscall.Signal) error // to every process of the session
	finish     func()                     // after Cmd.Wait: stragglers, resources

	mu      sync.Mutex
	started bool
	done    bool

	// limitErr is the limit the process tree went over, once it did.
	limitErr atomic.Pointer[LimitError]
}

// LimitExceeded returns the limit of Spec.Limits the process tree went
// over (the sandbox then ended the whole tree), or nil. It is final once
// Wait has returned.
func (p *Process) LimitExceeded() *LimitError { return p.limitErr.Load() }

// Start starts the process.
func (p *Process) Start() error {
	if err := p.Cmd.Start(); err != nil {
		p.Close()
		return err
	}
	p.mu.Lock()
	p.started = true
	p.mu.Unlock()
	if p.afterStart != nil {
		if err := p.afterStart(p.Cmd); err != nil {
			_ = p.Cmd.Process.Kill()
			_ = p.Wait()
			return err
		}
	}
	return nil
}

// Pid is the host pid of the started process (under bubblewrap, of bwrap,
// which leads its own process group; killing that group ends everything the
// session started).
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Signal sends sig to every process the session started: SIGTERM asks them
// all to stop, SIGKILL ends them. Signaling a process that has exited is not
// an error.
func (p *Process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	started, done := p.started, p.done
	p.mu.Unlock()
	if !started || done {
		return nil
	}
	return p.signal(sig)
}

// Wait waits for the process to exit, then ends whatever it left behind and
// releases what the sandbox set up for it. Its error is Cmd.Wait's.
func (p *Process) Wait() error {
	err := p.Cmd.Wait()
	p.Close()
	return err
}

// Close ends whatever the process left behind and releases the sandbox's
// resources. Wait calls it; call it directly only for a Process that was
// never started. It is idempotent.
func (p *Process) Close() {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return
	}
	p.done = true
	p.mu.Unlock()
	if p.finish != nil {
		p.finish()
	}
}

// Config configures New.
type Config struct {
	Mode Mode
	// Hidden are host paths a sandboxed process must never see even where
	// they lie under a directory it is given (the data dir,
	// $CREDENTIALS_DIRECTORY, the config file, the daemon's sockets). A
	// path not under any visible directory is invisible already.
	Hidden []string
	// Bwrap is the bwrap binary; empty means "bwrap" on PATH.
	Bwrap string
	// ProbeTimeout bounds each probe run of bwrap; 0 means
	// DefaultProbeTimeout.
	ProbeTimeout time.Duration
	// ProbeDir is a writable directory for the probe's throwaway
	// workspace; empty means the temporary directory.
	ProbeDir string
	// Egress serves the proxy of limited networks. Without it a limited
	// network cannot be enforced and its sessions fail.
	Egress Egress
	// Forwarder is the argv prefix, run inside the sandbox, that relays
	// loopback proxy connections to the egress socket; see ForwarderArgs.
	// Empty disables limited networks.
	Forwarder []string
	Logger    *slog.Logger
}

// Egress hands out a proxy endpoint per session: a Unix socket the daemon
// serves with the session's policy until release is called.
type Egress interface {
	Listen(sessionID string, policy Network) (socketPath string, release func(), err error)
}

// New builds the sandbox local.sandbox asks for. On Linux, auto and
// bubblewrap both require a working bwrap: without one New fails with a
// *ProbeError quoting bwrap and naming the likely cause, and the error says
// that local.sandbox: none runs harnesses unconfined knowingly. Nothing
// falls back to none silently. Only where no sandbox exists at all (not
// Linux) does auto mean none, with a warning.
func New(cfg Config) (Sandbox, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	switch cfg.Mode {
	case ModeNone:
		log.Warn("local.sandbox is none: harnesses run unconfined as the daemon's user, with the host's filesystem and network")
		return None{}, nil
	case ModeAuto, "":
		if runtime.GOOS != "linux" {
			log.Warn("local.sandbox is auto and "+runtime.GOOS+" has no sandbox at all: HARNESSES RUN UNCONFINED as the daemon's user, with the host's filesystem and network (they can read the database and the identity); run sandbox0d on Linux with bubblewrap to confine them, or set local.sandbox: none to say you know",
				"os", runtime.GOOS)
			return None{}, nil
		}
		bw, err := newBubblewrap(cfg)
		if err != nil {
			return nil, refusal(ModeAuto, err)
		}
		return bw, nil
	case ModeBubblewrap:
		if runtime.GOOS != "linux" {
			return nil, fmt.Errorf("local.sandbox: bubblewrap is only available on Linux (this is %s)", runtime.GOOS)
		}
		bw, err := newBubblewrap(cfg)
		if err != nil {
			return nil, refusal(ModeBubblewrap, err)
		}
		return bw, nil
	}
	return nil, fmt.Errorf("local.sandbox: must be bubblewrap, none or auto, got %q", cfg.Mode)
}

// refusal is New's error when bubblewrap does not work: what bwrap said,
// why, and the two ways out.
func refusal(mode Mode, err error) error {
	return fmt.Errorf("local.sandbox is %s but bubblewrap cannot confine harnesses on this host, so the local backend does not start "+
		"(it never runs them unconfined unless told to): %w. Fix that, or set local.sandbox: none to run harnesses unconfined knowingly "+
		"(each can then read and write whatever the daemon's user can: the database, the identity, the config)", mode, err)
}
