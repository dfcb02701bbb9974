package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slowSink records like recordingSink, but each event takes a while to
// record, as on a busy disk, and can cancel the turn after some events.
type slowSink struct {
	recordingSink
	delay       time.Duration
	cancelAfter int
	cancel      context.CancelFunc
}

func (s *slowSink) Emit(ev json.RawMessage) error {
	time.Sleep(s.delay) // the cost of recording one event, not a wait for anything
	err := s.recordingSink.Emit(ev)
	s.mu.Lock()
	n := len(s.events)
	s.mu.Unlock()
	if s.cancel != nil && n == s.cancelAfter {
		s.cancel()
	}
	return err
}
func (s *slowSink) EmitText(text string) error { return s.Emit(TextMessage(text)) }

// leakySandbox ends nothing a process leaves behind: a straggler that
// escaped every sandbox's clean-up, as the drain must expect one may.
type leakySandbox struct{ dir string }

func (s leakySandbox) Command(argv, env []string) (*sandbox.Process, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = s.dir, env
	return &sandbox.Process{Cmd: cmd}, nil
}

// runTurnAsync runs a command turn and fails the test if it has not ended
// within a minute (a hang is the failure these tests look for).
func runTurnAsync(t *testing.T, ctx context.Context, turn Turn, sink Sink, script string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := Command{Argv: []string{"/bin/sh", "-c", script}}.RunTurn(ctx, turn, sink)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatal("the turn did not end")
		return nil
	}
}

// A harness that writes and exits at once leaves output in the pipe; all of
// it is the turn's, however long recording it takes after the exit. (The
// drain used to close the pipe one grace period after the exit, and a
// 10,000-line turn on a loaded machine lost its last 2,405 events.)
func TestOutputWrittenBeforeTheExitIsAllRecorded(t *testing.T) {
	turn := testTurn(t)
	turn.Sandbox = execSandbox{turn.Workspace}
	turn.KillGracePeriod = 20 * time.Millisecond
	// The reader takes the first 500 lines at once and records them for at
	// least 500 ms; the rest is written 100 ms in, then the harness exits:
	// it waits in the pipe for 20 grace periods.
	sink := &slowSink{delay: time.Millisecond}
	require.NoError(t, runTurnAsync(t, context.Background(), turn, sink, "seq 1 500; sleep 0.1; seq 501 1000"))
	require.Equal(t, 1000, len(sink.events), "events recorded") // not Len: it would print all of them
	for i, ev := range sink.events {
		require.Contains(t, ev, fmt.Sprintf(`"text":"%d"`, i+1), "event %d", i)
	}
}

// A process that left the group and keeps the pipe open, writing nothing,
// holds the turn for one grace period, not for its life.
func TestAPipeHeldOpenByAStragglerIsClosedAfterTheGrace(t *testing.T) {
	turn := testTurn(t)
	turn.Sandbox = leakySandbox{turn.Workspace}
	turn.KillGracePeriod = 200 * time.Millisecond
	sink := &recordingSink{}
	// sleep keeps stdout open.
	err := runTurnAsync(t, context.Background(), turn, sink, "sleep 600 & echo $!")
	require.NoError(t, err)
	require.Len(t, sink.events, 1)
	var msg struct {
		Content []struct{ Text string } `json:"content"`
	}
	require.NoError(t, json.Unmarshal([]byte(sink.events[0]), &msg))
	require.Len(t, msg.Content, 1)
	pid, err := strconv.Atoi(strings.TrimSpace(msg.Content[0].Text))
	require.NoError(t, err, "the straggler's pid: %s", sink.events[0])
	assert.NoError(t, syscall.Kill(pid, syscall.SIGKILL), "the straggler outlived the turn, as this test needs")
}

// A straggler writing without end keeps the drain waiting only until the
// turn is canceled (its timeout, an interrupt, the daemon's shutdown); then
// one grace period, and the pipe is closed under it.
func TestAStragglerWritingWithoutEndHoldsTheTurnUntilItIsCanceled(t *testing.T) {
	turn := testTurn(t)
	turn.Sandbox = leakySandbox{turn.Workspace}
	turn.KillGracePeriod = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// 500 events take at least 500 ms, five grace periods: the drain waits
	// through them because the reader is busy, then the cancel bounds it.
	// The sink takes no more after that (the reader then reads on and
	// drops what it reads, as after a sink's refusal).
	sink := &slowSink{recordingSink: recordingSink{stopAt: 500}, delay: time.Millisecond, cancelAfter: 500, cancel: cancel}
	// The writer dies of SIGPIPE once the pipe is closed.
	err := runTurnAsync(t, ctx, turn, sink, `sh -c 'while :; do echo x || exit; done' & exit 0`)
	require.True(t, err == nil || errors.Is(err, context.Canceled), "%v", err)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	assert.GreaterOrEqual(t, len(sink.events), 500)
}
