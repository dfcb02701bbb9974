package harness

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
	"github.com/stretchr/testify/require"
)

// execSandbox starts processes unconfined in dir (the none sandbox).
type execSandbox struct{ dir string }

func (s execSandbox) Command(argv, env []string) (*sandbox.Process, error) {
	return sandbox.None{}.Command(sandbox.Spec{SessionID: "sesn_x", Argv: argv, Env: env, Dir: s.dir, Workspace: s.dir})
}

type recordingSink struct {
	mu      sync.Mutex
	events  []string
	pids    []int
	stopAt  int
	started chan int
}

func (s *recordingSink) Emit(ev json.RawMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopAt > 0 && len(s.events) >= s.stopAt {
		return ErrStop
	}
	s.events = append(s.events, string(ev))
	return nil
}
func (s *recordingSink) EmitText(text string) error { return s.Emit(TextMessage(text)) }
func (s *recordingSink) Usage(Usage)                {}
func (s *recordingSink) ProcessStarted(pid int) {
	s.pids = append(s.pids, pid)
	if s.started != nil {
		s.started <- pid
	}
}

func testTurn(t *testing.T) Turn {
	return Turn{SessionID: "sesn_x", Number: 2, Workspace: t.TempDir(),
		Events: []json.RawMessage{json.RawMessage(`{"type":"user.message","content":[{"type":"text","text":"hi"}]}`)},
		Env:    []string{"PATH=/usr/bin:/bin"}, KillGracePeriod: 5 * time.Second}
}

func TestCommandTurnMapsLinesAndReadsStdin(t *testing.T) {
	turn := testTurn(t)
	turn.Sandbox = execSandbox{turn.Workspace}
	sink := &recordingSink{}
	script := `read -r line; echo "got: $line"; echo '{"type":"agent.thinking"}'; echo; echo '{not json'`
	res, err := Command{Argv: []string{"/bin/sh", "-c", script}}.RunTurn(context.Background(), turn, sink)
	require.NoError(t, err)
	require.Empty(t, res.StopReason)
	require.Len(t, sink.events, 3)
	require.Contains(t, sink.events[0], `got: {\"type\":\"user.message\"`)
	require.JSONEq(t, `{"type":"agent.thinking"}`, sink.events[1])
	require.JSONEq(t, `{"type":"agent.message","content":[{"type":"text","text":"{not json"}]}`, sink.events[2])
	require.Len(t, sink.pids, 1)
}

func TestCommandTurnFailureNamesExitAndStderr(t *testing.T) {
	turn := testTurn(t)
	turn.Sandbox = execSandbox{turn.Workspace}
	_, err := Command{Argv: []string{"/bin/sh", "-c", "echo boom >&2; exit 3"}}.RunTurn(context.Background(), turn, &recordingSink{})
	require.EqualError(t, err, "the harness exited with status 3; stderr: boom")
}

func TestCommandTurnCancelStopsTheProcessGroup(t *testing.T) {
	turn := testTurn(t)
	turn.Sandbox = execSandbox{turn.Workspace}
	sink := &recordingSink{started: make(chan int, 1)}
	ctx, cancel := context.WithCancelCause(context.Background())
	stopped := errors.New("interrupted")
	done := make(chan error, 1)
	go func() {
		// The child sleeps in the same group; SIGTERM must reach it too.
		_, err := Command{Argv: []string{"/bin/sh", "-c", "sleep 600 & wait"}}.RunTurn(ctx, turn, sink)
		done <- err
	}()
	<-sink.started
	cancel(stopped)
	select {
	case err := <-done:
		require.ErrorIs(t, err, stopped)
	case <-time.After(time.Minute):
		t.Fatal("the turn did not stop")
	}
}

func TestCommandTurnStopsReadingWhenTheSinkRefuses(t *testing.T) {
	turn := testTurn(t)
	turn.Sandbox = execSandbox{turn.Workspace}
	sink := &recordingSink{stopAt: 2}
	_, err := Command{Argv: []string{"/bin/sh", "-c", "for i in 1 2 3 4 5; do echo $i; done"}}.RunTurn(context.Background(), turn, sink)
	require.NoError(t, err)
	require.Len(t, sink.events, 2)
	require.True(t, strings.Contains(sink.events[1], `"2"`))
}
