package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// ProbeError is why bubblewrap cannot confine harnesses on this host: bwrap
// is missing, or a probe run with a session's flags failed or hung. Its
// message quotes bwrap and names the likely cause.
type ProbeError struct {
	Bwrap string
	// Limited is true when the probe with --unshare-net failed (the one on
	// the host network passed).
	Limited  bool
	NotFound bool
	// Timeout is set when the probe did not finish in time.
	Timeout time.Duration
	// Output is what bwrap printed.
	Output string
	Err    error
}

func (e *ProbeError) Unwrap() error { return e.Err }

func (e *ProbeError) Error() string {
	if e.NotFound {
		return fmt.Sprintf("%s is not installed or not in the daemon's PATH (%v). Likely cause: the Debian package %s is missing (apt-get install %s)",
			e.Bwrap, e.Err, DebianPackage, DebianPackage)
	}
	variant := "a sandbox on the host network"
	if e.Limited {
		variant = "a sandbox with a network namespace of its own (--unshare-net, as a limited environment's)"
	}
	var said string
	switch {
	case e.Timeout > 0:
		said = fmt.Sprintf("it did not finish within %s (killed)", e.Timeout)
		if e.Output != "" {
			said += fmt.Sprintf(" after printing %q", e.Output)
		}
	case e.Output != "":
		said = fmt.Sprintf("it said %q (%v)", e.Output, e.Err)
	default:
		said = fmt.Sprintf("it failed: %v", e.Err)
	}
	return fmt.Sprintf("%s cannot build %s: %s. Likely cause: %s", e.Bwrap, variant, said, e.cause())
}

// systemdHint prefixes a unit directive when the daemon runs under systemd
// (INVOCATION_ID is set for every unit's processes).
func systemdHint() string {
	if os.Getenv("INVOCATION_ID") != "" {
		return "this daemon runs under systemd: its unit's "
	}
	return "if the daemon runs under systemd, its unit's "
}

// cause classifies bwrap's message into the setting that most likely
// produced it and names that setting.
func (e *ProbeError) cause() string {
	out := strings.ToLower(e.Output)
	has := func(s ...string) bool {
		for _, x := range s {
			if strings.Contains(out, strings.ToLower(x)) {
				return true
			}
		}
		return false
	}
	var exit *exec.ExitError
	if errors.As(e.Err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGSYS {
			return "a seccomp filter killed bwrap (SIGSYS): " + systemdHint() + "SystemCallFilter= forbids a system call bwrap needs (mount, pivot_root, unshare, sethostname); or a container runtime's seccomp profile does"
		}
	}
	switch {
	case e.Timeout > 0:
		return "bwrap hung; a seccomp or namespace restriction can leave it waiting on a child that never runs (" +
			systemdHint() + "SystemCallFilter=, RestrictNamespaces=), or the host is overloaded"
	case has("overflowuid", "overflowgid"):
		return "/proc/sys is hidden from the daemon, so bwrap cannot read kernel.overflowuid: " + systemdHint() +
			"ProcSubset=pid (drop it, or ProtectProc= alone is fine)"
	case has("max_user_namespaces", "/proc/sys") && has("read-only"):
		return "/proc/sys is read-only, so bwrap cannot limit nested user namespaces (--disable-userns): " + systemdHint() + "ProtectKernelTunables=yes"
	case has("sethostname"):
		return "setting the sandbox's hostname is forbidden: " + systemdHint() + "ProtectHostname=yes"
	case has("no permissions to create new namespace", "creating new namespace failed", "unshare", "uid map", "uid_map", "setgroups"):
		return userNamespaceCause()
	case has("pivot_root", "mount", "slave", "bad system call", "operation not permitted"):
		return "a system call bwrap needs is denied: " + systemdHint() + "SystemCallFilter= (~@privileged holds pivot_root; @mount must be allowed), " +
			"or RestrictNamespaces=/PrivateUsers=; or a container runtime's seccomp profile or missing CAP_SYS_ADMIN"
	case has("no such file", "can't find source path"):
		return "a path bwrap mounts is missing or hidden from the daemon (" + systemdHint() + "TemporaryFileSystem= or InaccessiblePaths=)"
	}
	return "unrecognized; bwrap's own message above is the best lead"
}

// userNamespaceCause names what keeps bwrap from creating a user
// namespace, reading the kernel settings that can.
func userNamespaceCause() string {
	read := func(path string) string {
		data, err := os.ReadFile(path)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(data))
	}
	var causes []string
	if read("/proc/sys/user/max_user_namespaces") == "0" {
		causes = append(causes, "the kernel setting user.max_user_namespaces is 0 (sysctl -w user.max_user_namespaces=15000)")
	}
	if os.Geteuid() != 0 && read("/proc/sys/kernel/unprivileged_userns_clone") == "0" {
		causes = append(causes, "the kernel setting kernel.unprivileged_userns_clone is 0 (sysctl -w kernel.unprivileged_userns_clone=1)")
	}
	if os.Geteuid() != 0 && read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1" {
		causes = append(causes, "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1; give bwrap an AppArmor profile that allows userns)")
	}
	if len(causes) > 0 {
		return "user namespaces are disabled: " + strings.Join(causes, "; ")
	}
	return "creating namespaces is denied: " + systemdHint() + "RestrictNamespaces= (bwrap needs user, mnt, pid, ipc, uts, net and cgroup) or PrivateUsers=yes, " +
		"or SystemCallFilter= denying unshare/clone; or a container runtime's seccomp profile; or the kernel settings user.max_user_namespaces / kernel.unprivileged_userns_clone"
}
