package local

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	stderrTailBytes     = 64 << 10 // kept per session
	stderrExcerptBytes  = 1 << 10  // quoted in a session.error
	sinkBatchEvents     = 256
	sinkBatchBytes      = 1 << 20
	sinkQueuedEvents    = 64
	stdoutReadBufferLen = 64 << 10
)

// harnessPassthroughEnv are the daemon variables a harness inherits; the
// rest of the daemon's environment (its own config, secrets) stays out.
var harnessPassthroughEnv = []string{
	"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "TERM",
	"http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
}

// runHarness runs the agent's command in the workspace, in its own process
// group, and turns its stdout lines into session events.
func (b *Backend) runHarness(ctx context.Context, run *sessionRun) outcome {
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)

	cmd := exec.Command(run.agent.Command[0], run.agent.Command[1:]...)
	cmd.Dir = run.workspace
	cmd.Env = b.harnessEnv(run)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
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
	// *os.File outputs go to the child as they are, so Wait returns when the
	// harness exits and the readers here drain what is left.
	cmd.Stdout, cmd.Stderr = stdoutW, stderrW
	stdin, err := cmd.StdinPipe()
	if err == nil {
		err = cmd.Start()
	}
	stdoutW.Close()
	stderrW.Close()
	if err != nil {
		return outcome{status: statusTerminated,
			failure: failuref("starting the harness %q of agent %s: %v", run.agent.Command[0], run.agent.ID, err)}
	}
	pgid := cmd.Process.Pid
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
	go b.stopGroupOnCancel(ctx, pgid, exited)

	waitErr := cmd.Wait()
	close(exited)
	_ = signalGroup(pgid, syscall.SIGKILL) // whatever the harness left behind in its group
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
func (b *Backend) stopGroupOnCancel(ctx context.Context, pgid int, exited <-chan struct{}) {
	select {
	case <-exited:
		return
	case <-ctx.Done():
	}
	_ = signalGroup(pgid, syscall.SIGTERM)
	grace := time.NewTimer(b.cfg.KillGracePeriod)
	defer grace.Stop()
	select {
	case <-exited:
	case <-grace.C:
		_ = signalGroup(pgid, syscall.SIGKILL)
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
	grace := time.NewTimer(b.cfg.KillGracePeriod)
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

// pumpStdout turns stdout lines into events until EOF. Past the output cap
// it stops the harness and discards the rest.
func (b *Backend) pumpStdout(r io.Reader, limit int64, sink *eventSink, stop context.CancelCauseFunc) {
	var total int64
	capped := false
	_ = readLines(r, maxHarnessEventLineBytes, func(line []byte, size int) {
		if capped {
			return
		}
		total += int64(size)
		if total > limit {
			capped = true
			stop(errOutputCapped)
			return
		}
		line = bytes.TrimRight(line, "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			return
		}
		sink.add(harnessLineEvent(line, b.cfg.Now()))
	})
}

// readLines reads r to the end and calls emit for every line without its
// "\n". A line longer than maxLine is cut to maxLine bytes; size is always
// what the whole line took in the stream.
func readLines(r io.Reader, maxLine int, emit func(line []byte, size int)) error {
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
			emit(line, size)
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

// stderrExcerpt is the end of the stderr tail, for a session.error.
func stderrExcerpt(tail []byte) string {
	text := strings.TrimSpace(string(tail))
	if len(text) > stderrExcerptBytes {
		text = "…" + strings.TrimLeft(text[len(text)-stderrExcerptBytes:], "\n")
	}
	return strings.ToValidUTF8(text, "�")
}

// harnessEnv builds the harness environment. Later sources win: passthrough
// from the daemon, agent env, environment env, vault values, then the
// SANDBOX0D_* variables that describe the session.
func (b *Backend) harnessEnv(run *sessionRun) []string {
	vars := map[string]string{}
	for _, k := range harnessPassthroughEnv {
		if v, ok := b.baseEnv[k]; ok {
			vars[k] = v
		}
	}
	maps.Copy(vars, run.agent.Env)
	maps.Copy(vars, run.env.Env)
	maps.Copy(vars, run.vaultEnv)
	prompt := run.prompt
	if len(prompt) > maxPromptEnvBytes {
		// The kernel refuses larger single variables; stdin has the full text.
		prompt = strings.ToValidUTF8(prompt[:maxPromptEnvBytes], "")
	}
	maps.Copy(vars, map[string]string{
		"SANDBOX0D_SESSION_ID":     run.id,
		"SANDBOX0D_DEPLOYMENT_ID":  run.deploymentID,
		"SANDBOX0D_RUN_ID":         run.runID,
		"SANDBOX0D_AGENT_ID":       run.agent.ID,
		"SANDBOX0D_AGENT_VERSION":  strconv.FormatInt(run.agent.Version, 10),
		"SANDBOX0D_ENVIRONMENT_ID": run.env.ID,
		"SANDBOX0D_WORKSPACE":      run.workspace,
		"SANDBOX0D_PROMPT":         prompt,
		"PWD":                      run.workspace,
	})
	return envList(vars)
}

// passthrough returns KEY=VALUE for the listed daemon variables that are set.
func (b *Backend) passthrough(keys []string) []string {
	vars := map[string]string{}
	for _, k := range keys {
		if v, ok := b.baseEnv[k]; ok {
			vars[k] = v
		}
	}
	return envList(vars)
}

func envList(vars map[string]string) []string {
	out := make([]string, 0, len(vars))
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		out = append(out, k+"="+vars[k])
	}
	return out
}

func environMap(environ []string) map[string]string {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			vars[k] = v
		}
	}
	return vars
}

// eventSink records harness events from one goroutine, committing whatever
// has queued up in one transaction. The bounded queue pushes back on the
// harness (through its stdout pipe) when bbolt is slower than its output.
type eventSink struct {
	b         *Backend
	sessionID string
	events    chan []byte
	done      chan struct{}
	fail      context.CancelCauseFunc
}

func (b *Backend) newEventSink(sessionID string, fail context.CancelCauseFunc) *eventSink {
	s := &eventSink{b: b, sessionID: sessionID, events: make(chan []byte, sinkQueuedEvents),
		done: make(chan struct{}), fail: fail}
	go s.loop()
	return s
}

func (s *eventSink) add(ev []byte) { s.events <- ev }

// close flushes the queued events and stops the sink.
func (s *eventSink) close() {
	close(s.events)
	<-s.done
}

func (s *eventSink) loop() {
	defer close(s.done)
	failed := false
	for ev := range s.events {
		batch, size := [][]byte{ev}, len(ev)
	fill:
		for len(batch) < sinkBatchEvents && size < sinkBatchBytes {
			select {
			case next, ok := <-s.events:
				if !ok {
					break fill
				}
				batch, size = append(batch, next), size+len(next)
			default:
				break fill
			}
		}
		if failed {
			continue
		}
		now := s.b.cfg.Now()
		if _, err := s.b.store.appendEvents(s.sessionID, batch, func(rec *sessionRecord) error {
			rec.UpdatedAt = now
			return nil
		}); err != nil {
			failed = true
			s.fail(fmt.Errorf("recording harness output: %w", err))
			continue
		}
		s.b.notify(s.sessionID)
	}
}
