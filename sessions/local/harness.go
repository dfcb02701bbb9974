package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
)

// harnessHomeDir is HOME inside a sandbox, relative to the workspace.
const harnessHomeDir = ".home"

// stderrTailBytes is how much of a harness's stderr is kept per session.
const stderrTailBytes = 64 << 10

// runHarness runs the agent's command in the workspace, in its own process
// group, and turns its stdout lines into session events.
func (b *Backend) runHarness(ctx context.Context, run *sessionRun) outcome {
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)

	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		return outcome{status: statusTerminated, failure: failuref("creating the harness stdout pipe: %v", err)}
	}
	defer stdoutR.Close()
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		stdoutW.Close()
		return outcome{status: statusTerminated, failure: failuref("creating the harness stderr pipe: %v", err)}
	}
	defer stderrR.Close()
	proc, err := b.sandbox.Command(sandbox.Spec{
		SessionID: run.id,
		Argv:      run.agent.Command,
		Dir:       run.workspace,
		Env:       b.harnessEnv(run),
		Workspace: run.workspace,
		Home:      filepath.Join(run.workspace, harnessHomeDir),
		Network:   run.env.sandboxNetwork(),
	})
	if err != nil {
		stdoutW.Close()
		stderrW.Close()
		return outcome{status: statusTerminated,
			failure: failuref("preparing the harness %q of agent %s: %v", run.agent.Command[0], run.agent.ID, err)}
	}
	cmd := proc.Cmd
	// *os.File outputs go to the child as they are, so Wait returns when the
	// harness exits and the readers here drain what is left.
	cmd.Stdout, cmd.Stderr = stdoutW, stderrW
	stdin, err := cmd.StdinPipe()
	if err == nil {
		err = proc.Start()
	} else {
		proc.Close()
	}
	stdoutW.Close()
	stderrW.Close()
	if err != nil {
		return outcome{status: statusTerminated,
			failure: failuref("starting the harness %q of agent %s: %v", run.agent.Command[0], run.agent.ID, err)}
	}
	pgid := proc.Pid()
	if proc := describeProcess(pgid, b.bootID); proc != nil {
		if _, err := b.store.update(run.id, func(rec *sessionRecord) error {
			rec.Process = proc
			return nil
		}); err != nil {
			b.log.Warn("recording the harness process", "session_id", run.id, "err", err)
		}
	}

	go feedInitialEvents(stdin, run.stdinEvents)
	stderr := newTailBuffer(stderrTailBytes)
	stderrDone := make(chan struct{})
	go func() {
		defer close(stderrDone)
		_, _ = io.Copy(stderr, stderrR)
	}()
	sink := b.newEventSink(run.id, stop)
	stdoutDone := make(chan struct{})
	go func() {
		defer close(stdoutDone)
		b.pumpStdout(stdoutR, run.env.MaxOutputBytes, sink, stop)
	}()
	exited := make(chan struct{})
	go b.stopGroupOnCancel(ctx, proc, exited)

	waitErr := proc.Wait() // also ends whatever the harness left behind
	close(exited)
	b.awaitDrain(run.id, []<-chan struct{}{stdoutDone, stderrDone}, stdoutR, stderrR)
	sink.close()

	out := outcome{status: statusIdle, stderr: stderr.Bytes()}
	if context.Cause(ctx) != nil {
		ended := b.endedBy(ctx, nil, run)
		ended.stderr = out.stderr
		return ended
	}
	if waitErr == nil {
		return out
	}
	out.status = statusTerminated
	var exitErr *exec.ExitError
	if !errors.As(waitErr, &exitErr) {
		out.failure = failuref("waiting for the harness: %v", waitErr)
		return out
	}
	msg := fmt.Sprintf("the harness exited with status %d", exitErr.ExitCode())
	if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		msg = fmt.Sprintf("the harness was killed by signal %s", ws.Signal())
	}
	if excerpt := stderrExcerpt(out.stderr); excerpt != "" {
		msg += "; stderr: " + excerpt
	}
	out.failure = failuref("%s", msg)
	return out
}

// feedInitialEvents writes the initial events as JSON lines and closes
// stdin. A harness that never reads stdin just makes the writes fail.
func feedInitialEvents(stdin io.WriteCloser, events [][]byte) {
	defer stdin.Close()
	w := bufio.NewWriter(stdin)
	for _, ev := range events {
		w.Write(ev)
		w.WriteByte('\n')
	}
	_ = w.Flush()
}

// stopGroupOnCancel terminates the harness's process group when the session
// is interrupted, times out, overruns its output or the daemon stops:
// SIGTERM, then SIGKILL after the grace period.
func (b *Backend) stopGroupOnCancel(ctx context.Context, proc *sandbox.Process, exited <-chan struct{}) {
	select {
	case <-exited:
		return
	case <-ctx.Done():
	}
	_ = proc.Signal(syscall.SIGTERM)
	grace := time.NewTimer(b.shutdown.bound(b.cfg.KillGracePeriod, killStage))
	defer grace.Stop()
	select {
	case <-exited:
	case <-grace.C:
		_ = proc.Signal(syscall.SIGKILL)
	}
}

// awaitDrain waits for the output readers to reach EOF. A process that left
// the group (setsid) could hold the pipes open forever, so after the grace
// period the pipes are closed under it.
func (b *Backend) awaitDrain(sessionID string, done []<-chan struct{}, pipes ...*os.File) {
	all := make(chan struct{})
	go func() {
		for _, ch := range done {
			<-ch
		}
		close(all)
	}()
	grace := time.NewTimer(b.shutdown.bound(b.cfg.KillGracePeriod, drainStage))
	defer grace.Stop()
	select {
	case <-all:
		return
	case <-grace.C:
	}
	b.log.Warn("harness output is held open by a process outside its group; closing it", "session_id", sessionID)
	for _, p := range pipes {
		p.Close()
	}
	<-all
}
