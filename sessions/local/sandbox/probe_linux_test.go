package sandbox

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeBwrap writes an executable script standing in for bwrap.
func fakeBwrap(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bwrap")
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755))
	return path
}

// processesWith lists host pids whose command line contains marker.
func processesWith(marker string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if data, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && bytes.Contains(data, []byte(marker)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// A bwrap that hangs, with a child that holds its output open, cannot hang
// the daemon's start: New returns once the probe's timeout passes, with an
// error saying so, and the probe's process group is gone.
func TestProbeHangIsKilled(t *testing.T) {
	for name, body := range map[string]string{
		// The parent hangs and its child holds stdout/stderr.
		"parent hangs": "sleep %s &\nexec sleep %s\n",
		// The parent dies at once, its child keeps the output open (the
		// probe's old CombinedOutput waited for that child).
		"parent exits": "sleep %s &\nexit 1\n",
	} {
		t.Run(name, func(t *testing.T) {
			marker := "4711." + strconv.Itoa(os.Getpid()) + strconv.Itoa(len(name))
			bwrap := fakeBwrap(t, strings.ReplaceAll(body, "%s", marker))
			start := time.Now()
			_, err := New(Config{Mode: ModeAuto, Bwrap: bwrap, ProbeTimeout: 300 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
			took := time.Since(start)
			require.Error(t, err)
			// Not a timing benchmark: the old probe never returned here.
			assert.Less(t, took, 5*time.Second, "New hung on the probe")
			assert.Contains(t, err.Error(), "local.sandbox: none")
			if name == "parent hangs" {
				assert.Contains(t, err.Error(), "did not finish within 300ms (killed)")
			}
			require.Eventually(t, func() bool { return len(processesWith(marker)) == 0 }, 5*time.Second, 20*time.Millisecond,
				"the probe's processes outlived it: %v", processesWith(marker))
		})
	}
}

// local.sandbox: auto with a bwrap that cannot create namespaces refuses
// to start: the error quotes bwrap, names the likely cause and the way out.
func TestAutoRefusesBrokenBwrap(t *testing.T) {
	for _, c := range []struct{ said, cause string }{
		{"bwrap: No permissions to create new namespace, likely because the kernel does not allow non-privileged user namespaces.", "RestrictNamespaces="},
		{"bwrap: Can't read /proc/sys/kernel/overflowuid: No such file or directory", "ProcSubset=pid"},
		{"bwrap: sethostname: Operation not permitted", "ProtectHostname=yes"},
		{"bwrap: pivot_root: Operation not permitted", "~@privileged"},
		{"bwrap: Can't write /proc/sys/user/max_user_namespaces: Read-only file system", "ProtectKernelTunables=yes"},
	} {
		bwrap := fakeBwrap(t, "cat >&2 <<'EOF'\n"+c.said+"\nEOF\nexit 1\n")
		for _, mode := range []Mode{ModeAuto, ModeBubblewrap} {
			_, err := New(Config{Mode: mode, Bwrap: bwrap, Logger: slog.New(slog.DiscardHandler)})
			require.Error(t, err)
			msg := err.Error()
			assert.Contains(t, msg, "local.sandbox is "+string(mode)+" but bubblewrap cannot confine harnesses")
			assert.Contains(t, msg, strconv.Quote(c.said), "bwrap's own words")
			assert.Contains(t, msg, c.cause)
			assert.Contains(t, msg, "set local.sandbox: none to run harnesses unconfined knowingly")
			var pe *ProbeError
			require.ErrorAs(t, err, &pe)
		}
	}
}

// Without bwrap the error names the package.
func TestAutoRefusesMissingBwrap(t *testing.T) {
	_, err := New(Config{Mode: ModeAuto, Bwrap: filepath.Join(t.TempDir(), "bwrap"), Logger: slog.New(slog.DiscardHandler)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Debian package bubblewrap is missing")
	assert.Contains(t, err.Error(), "local.sandbox: none")
}

// The probe runs the flags sessions run: a bwrap that rejects --hostname
// (ProtectHostname=yes) or --unshare-net fails the probe, not the first
// session. The fake reads the options the way bwrap does, from the --args
// descriptor, and hands everything else to the real bwrap.
func TestProbeUsesSessionFlags(t *testing.T) {
	needBwrap(t, Config{})
	real, err := filepath.Abs("/usr/bin/bwrap")
	require.NoError(t, err)
	for flag, want := range map[string]string{
		"--hostname":    "a sandbox on the host network",
		"--unshare-net": "a sandbox with a network namespace of its own",
		"--uid":         "a sandbox on the host network",
	} {
		// /proc/self/fd/4 opens the options anew, leaving fd 4's offset
		// for the real bwrap.
		bwrap := fakeBwrap(t, `if tr '\0' '\n' < /proc/self/fd/4 | grep -qx -- '`+flag+`'; then
	echo "bwrap: `+flag+` refused" >&2; exit 1
fi
exec `+real+` "$@"
`)
		_, err := New(Config{Mode: ModeAuto, Bwrap: bwrap, Logger: slog.New(slog.DiscardHandler)})
		require.Error(t, err, flag)
		assert.Contains(t, err.Error(), want, flag)
		assert.Contains(t, err.Error(), flag+" refused", flag)
	}
	// And a bwrap that accepts them all passes.
	bwrap := fakeBwrap(t, "exec "+real+` "$@"`+"\n")
	_, err = New(Config{Mode: ModeAuto, Bwrap: bwrap})
	require.NoError(t, err)
}
