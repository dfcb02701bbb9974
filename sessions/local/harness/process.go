package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
)

const (
	// StderrTailBytes is how much of a process's stderr RunProcess keeps.
	StderrTailBytes = 64 << 10
	// MaxLineBytes cuts longer stdout lines.
	MaxLineBytes        = 1 << 20
	stdoutReadBufferLen = 64 << 10
	stderrExcerptBytes  = 1 << 10
)

// Process is one process of a turn.
type Process struct {
	Argv  []string
	Env   []string
	Stdin []byte // written, then stdin is closed
	// OnLine gets every stdout line without its newline (cut to
	// MaxLineBytes). Once it returns an error, the rest of stdout is
	// discarded; it is called from one goroutine.
	OnLine func(line []byte) error
}

// Exit is how a process ended.
type Exit struct {
	Code     int            // exit status; -1 when killed by a signal
	Signal   syscall.Signal // the signal that killed it, if any
	Stderr   []byte         // tail of stderr, at most StderrTailBytes
	Canceled bool           // ctx was canceled before it exited
}

// Failed reports whether the process did not exit 0 by itself.
func (e Exit) Failed() bool { return e.Code != 0 || e.Signal != 0 }

// Describe says how a failed process ended, with the end of its stderr.
func (e Exit) Describe(name string) string {
	msg := fmt.Sprintf("%s exited with status %d", name, e.Code)
	if e.Signal != 0 {
		msg = fmt.Sprintf("%s was killed by signal %s", name, e.Signal)
	}
	if excerpt := StderrExcerpt(e.Stderr); excerpt != "" {
		msg += "; stderr: " + excerpt
	}
	return msg
}

// RunProcess runs p through the turn's sandbox and waits for it. When ctx
// is canceled every process of it gets SIGTERM, then SIGKILL after
// turn.KillGracePeriod; whatever the process leaves behind is killed once it
// exits (the sandbox's Wait). The error is for failures to start or
// wait; an exit status is in Exit.
func RunProcess(ctx context.Context, turn Turn, sink Sink, p Process) (Exit, error) {
	if len(p.Argv) == 0 {
		return Exit{}, errors.New("no command to run")
	}
	if turn.Sandbox == nil {
		return Exit{}, errors.New("the turn has no sandbox to start processes in")
	}
	proc, err := turn.Sandbox.Command(p.Argv, p.Env)
	if err != nil {
		return Exit{}, fmt.Errorf("preparing %q: %w", p.Argv[0], err)
	}
	cmd := proc.Cmd

	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		proc.Close()
		return Exit{}, fmt.Errorf("creating the stdout pipe: %w", err)
	}
	defer stdoutR.Close()
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		stdoutW.Close()
		proc.Close()
		return Exit{}, fmt.Errorf("creating the stderr pipe: %w", err)
	}
	defer stderrR.Close()
	// *os.File outputs go to the child as they are, so Wait returns when the
	// process exits and the readers here drain what is left.
	cmd.Stdout, cmd.Stderr = stdoutW, stderrW
	stdin, err := cmd.StdinPipe()
	if err == nil {
		err = proc.Start() // closes proc itself when it fails
	} else {
		proc.Close()
	}
	stdoutW.Close()
	stderrW.Close()
	if err != nil {
		return Exit{}, fmt.Errorf("starting %q: %w", p.Argv[0], err)
	}
	sink.ProcessStarted(proc.Pid())

	go func() {
		defer stdin.Close()
		_, _ = stdin.Write(p.Stdin) // a process that never reads stdin just makes this fail
	}()
	stderr := NewTailBuffer(StderrTailBytes)
	stderrPipe := newOutputPipe(stderrR)
	go func() {
		defer close(stderrPipe.done)
		_, _ = io.Copy(stderr, stderrPipe)
	}()
	stdoutPipe := newOutputPipe(stdoutR)
	go func() {
		defer close(stdoutPipe.done)
		var stopped bool
		_ = readLines(stdoutPipe, MaxLineBytes, func(line []byte) {
			if !stopped && p.OnLine != nil && p.OnLine(line) != nil {
				stopped = true
			}
		})
	}()
	exited := make(chan struct{})
	go stopOnCancel(ctx, proc, func() time.Duration { return turn.grace(false) }, exited)

	waitErr := proc.Wait() // also ends whatever the process left behind
	close(exited)
	drainOutput(ctx, func() time.Duration { return turn.grace(true) }, stdoutPipe, stderrPipe)

	out := Exit{Stderr: stderr.Bytes(), Canceled: ctx.Err() != nil}
	if waitErr == nil {
		return out, nil
	}
	var exitErr *exec.ExitError
	if !errors.As(waitErr, &exitErr) {
		return out, fmt.Errorf("waiting for %q: %w", p.Argv[0], waitErr)
	}
	out.Code = exitErr.ExitCode()
	if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		out.Signal = ws.Signal()
	}
	return out, nil
}

// stopOnCancel stops every process of the turn once ctx is canceled:
// SIGTERM, then SIGKILL after the grace period.
func stopOnCancel(ctx context.Context, proc *sandbox.Process, grace func() time.Duration, exited <-chan struct{}) {
	select {
	case <-exited:
		return
	case <-ctx.Done():
	}
	_ = proc.Signal(syscall.SIGTERM)
	timer := time.NewTimer(grace())
	defer timer.Stop()
	select {
	case <-exited:
	case <-timer.C:
		_ = proc.Signal(syscall.SIGKILL)
	}
}

// readLines reads r to the end and calls emit for every line without its
// "\n" (and a trailing "\r"). A line longer than maxLine is cut.
func readLines(r io.Reader, maxLine int, emit func(line []byte)) error {
	br := bufio.NewReaderSize(r, stdoutReadBufferLen)
	var long []byte
	inLong, size := false, 0
	for {
		chunk, err := br.ReadSlice('\n')
		size += len(chunk)
		if errors.Is(err, bufio.ErrBufferFull) {
			long, inLong = appendBounded(long, chunk, maxLine), true
			continue
		}
		line := chunk
		if inLong {
			long = appendBounded(long, chunk, maxLine)
			line = long
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		if len(line) > maxLine {
			line = line[:maxLine]
		}
		if size > 0 {
			emit(bytes.TrimRight(line, "\r"))
		}
		long, inLong, size = long[:0], false, 0
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func appendBounded(dst, src []byte, max int) []byte {
	room := max - len(dst)
	if room <= 0 {
		return dst
	}
	if len(src) > room {
		src = src[:room]
	}
	return append(dst, src...)
}

// StderrExcerpt is the end of a stderr tail, short enough for a
// session.error message.
func StderrExcerpt(tail []byte) string {
	text := strings.TrimSpace(string(tail))
	if len(text) > stderrExcerptBytes {
		text = "…" + strings.TrimLeft(text[len(text)-stderrExcerptBytes:], "\n")
	}
	return CleanText(text)
}
