package sandbox

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"
)

// None runs processes unconfined, as the daemon's own user, with the host's
// filesystem and network. It confines a session's processes only as far as
// a process group and a search for stragglers go: a process that leaves the
// group (setsid) and scrubs its environment survives the session.
type None struct{}

// Name implements Sandbox.
func (None) Name() string { return string(ModeNone) }

// Confined implements Sandbox.
func (None) Confined() bool { return false }

// Command implements Sandbox. A limited network is refused: without a
// network namespace nothing can keep the process off the host network.
func (None) Command(spec Spec) (*Process, error) {
	if err := checkSpec(spec); err != nil {
		return nil, err
	}
	if spec.Network.Limited {
		return nil, fmt.Errorf("%w: environment %s has networking type limited and local.sandbox is none (bubblewrap is needed to run it)",
			ErrNetworkPolicy, spec.Network.Environment)
	}
	if spec.Network.Proxied {
		// The host network would bypass the proxy that substitutes the
		// session's credentials: refused rather than run unprojected.
		return nil, fmt.Errorf("%w: the session's credentials are projected through the egress proxy (environment %s), which needs bubblewrap, and local.sandbox is none",
			ErrNetworkPolicy, spec.Network.Environment)
	}
	cmd := exec.Command(spec.Argv[0], spec.Argv[1:]...)
	cmd.Dir = spec.Dir
	cmd.Env = withMarker(spec.Env, spec.SessionID)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &Process{Cmd: cmd}
	p.signal = func(sig syscall.Signal) error { return signalGroup(cmd.Process.Pid, sig) }
	p.finish = func() {
		if cmd.Process == nil {
			return
		}
		_ = signalGroup(cmd.Process.Pid, syscall.SIGKILL)
		if spec.SessionID != "" {
			killMarked(markerEnv + "=" + spec.SessionID)
		}
	}
	if err := applyLimits(p, spec); err != nil {
		return nil, err
	}
	return p, nil
}

// markerEnv marks every process of a session in its environment, so the
// processes a harness left behind can be found without a sandbox.
const markerEnv = "SANDBOX0D_SESSION_ID"

// withMarker returns env with SANDBOX0D_SESSION_ID set to sessionID.
func withMarker(env []string, sessionID string) []string {
	if sessionID == "" {
		return env
	}
	return setEnv(env, markerEnv, sessionID)
}

// setEnv returns a copy of env with key set to value (replacing any
// earlier value).
func setEnv(env []string, key, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if len(kv) > len(key) && kv[len(key)] == '=' && kv[:len(key)] == key {
			continue
		}
		out = append(out, kv)
	}
	return append(out, key+"="+value)
}

func checkSpec(spec Spec) error {
	switch {
	case len(spec.Argv) == 0 || spec.Argv[0] == "":
		return errors.New("sandbox: no program to run")
	case spec.Workspace == "":
		return errors.New("sandbox: no workspace")
	}
	return nil
}

// signalGroup signals every process of the group led by pgid. A group that
// is already gone is not an error.
func signalGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 1 { // never signal "every process" or init's group
		return nil
	}
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}
