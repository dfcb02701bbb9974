package sandbox

import (
	"errors"
	"io"
	"os"
	"strings"
	"syscall"
	"time"
)

// probe runs a trivial program through the same argument builder as a
// session's process (limited: with --unshare-net) and reports bwrap's own
// words when it fails. It cannot hang: bwrap leads its own process group,
// which is killed when the timeout passes, its output goes to a memory
// file (no pipe a surviving child could hold open), and Wait is given up
// on shortly after the kill should the kernel not reap it.
func (b *Bubblewrap) probe(limited bool, timeout time.Duration) error {
	// The probe's workspace: where the daemon writes anyway (its data dir;
	// a unit's ProtectSystem=strict may leave /tmp read-only), else the
	// temporary directory.
	ws, err := os.MkdirTemp(b.probeDir, "sandbox0d-probe-")
	if err != nil {
		return &ProbeError{Bwrap: b.bwrap, Limited: limited, Err: err}
	}
	defer os.RemoveAll(ws)
	p, err := b.command(Spec{Argv: []string{"/bin/sh", "-c", ":"}, Workspace: ws, Env: []string{"PATH=/usr/bin:/bin"},
		Network: Network{Limited: limited, Environment: "probe"}}, true)
	if err != nil {
		return &ProbeError{Bwrap: b.bwrap, Limited: limited, Err: err}
	}
	out, err := dataFile(nil)
	if err != nil {
		p.Close()
		return &ProbeError{Bwrap: b.bwrap, Limited: limited, Err: err}
	}
	defer out.Close()
	p.Cmd.Stdout, p.Cmd.Stderr = out, out
	p.Cmd.WaitDelay = time.Second
	// Not p.Start: it waits for bwrap's info descriptor, which a hung
	// bwrap (or a child of it) would hold open.
	if err := p.Cmd.Start(); err != nil {
		p.Close()
		return &ProbeError{Bwrap: b.bwrap, Limited: limited, Err: err}
	}
	p.mu.Lock()
	p.started = true
	p.mu.Unlock()
	pid := p.Cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- p.Wait() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err = <-done:
	case <-timer.C:
		_ = signalGroup(pid, syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(time.Second):
		}
		return &ProbeError{Bwrap: b.bwrap, Limited: limited, Timeout: timeout, Output: readOutput(out)}
	}
	if err != nil {
		return &ProbeError{Bwrap: b.bwrap, Limited: limited, Err: err, Output: readOutput(out)}
	}
	return nil
}

// readOutput is what the probe printed, its first 2 KiB, trimmed.
func readOutput(f *os.File) string {
	buf := make([]byte, 2048)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	return strings.TrimSpace(string(buf[:n]))
}
