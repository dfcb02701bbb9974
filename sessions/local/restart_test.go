package local

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const restartHelperEnv = "SANDBOX0D_LOCAL_RESTART_HELPER_DIR"

// restartHelperReport is what the helper daemon tells the test.
type restartHelperReport struct {
	Running    string `json:"running"`
	Queued     string `json:"queued"`
	HarnessPID int    `json:"harness_pid"`
	ChildPID   int    `json:"child_pid"`
}

func restartConfig(dir string) Config {
	return Config{
		Agents:                []Agent{shAgent("agent_block", `echo "ready $$"; sleep 1000 & echo "child $!"; wait`)},
		Environments:          []Environment{{ID: testEnvironment}},
		WorkspaceDir:          filepath.Join(dir, "workspaces"),
		MaxConcurrentSessions: 1,
		Logger:                slog.New(slog.DiscardHandler),
	}
}

// TestRestartHelperDaemon is not a test: TestRestartTerminatesSessionsLeftRunning
// runs the test binary as a "daemon" process with it, then kills that
// process with SIGKILL while a harness runs.
func TestRestartHelperDaemon(t *testing.T) {
	dir := os.Getenv(restartHelperEnv)
	if dir == "" {
		t.Skip("helper process of TestRestartTerminatesSessionsLeftRunning")
	}
	st, ns := openStore(t, filepath.Join(dir, "state.db"))
	b, err := New(ns, restartConfig(dir))
	require.NoError(t, err)
	rig := &testRig{t: t, b: b, st: st, ns: ns}
	req := sessions.CreateRequest{Agent: sessions.AgentRef{ID: "agent_block", Version: 1}, EnvironmentID: testEnvironment,
		InitialEvents: []json.RawMessage{userMessage("hi")}}
	running, err := b.CreateSession(t.Context(), req)
	require.NoError(t, err)
	queued, err := b.CreateSession(t.Context(), req)
	require.NoError(t, err)
	report := restartHelperReport{Running: running, Queued: queued}
	report.HarnessPID, _ = strconv.Atoi(strings.TrimPrefix(rig.waitForText(running, "ready "), "ready "))
	report.ChildPID, _ = strconv.Atoi(strings.TrimPrefix(rig.waitForText(running, "child "), "child "))
	line, _ := json.Marshal(report)
	os.Stdout.Write(append([]byte("HELPER "), append(line, '\n')...))
	<-t.Context().Done() // until killed
}

func TestRestartEndsTurnsLeftRunning(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	helper := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestRestartHelperDaemon$", "-test.count=1")
	helper.Env = append(os.Environ(), restartHelperEnv+"="+dir)
	helper.Stderr = os.Stderr
	out, err := helper.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, helper.Start())
	t.Cleanup(func() { _ = helper.Process.Kill(); _ = helper.Wait() })

	var report restartHelperReport
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if line, ok := strings.CutPrefix(lines.Text(), "HELPER "); ok {
			require.NoError(t, json.Unmarshal([]byte(line), &report))
			break
		}
	}
	require.NotEmpty(t, report.Running, "the helper daemon did not report")

	// The daemon dies without any chance to clean up; its harness lives on.
	require.NoError(t, helper.Process.Signal(syscall.SIGKILL))
	_ = helper.Wait()
	require.True(t, processAlive(report.HarnessPID), "the harness outlives a killed daemon")

	st, ns := openStore(t, filepath.Join(dir, "state.db"))
	t.Cleanup(func() { _ = st.Close() })
	b, err := New(ns, restartConfig(dir))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	rig := &testRig{t: t, b: b, st: st, ns: ns}

	for id, wantMessage := range map[string]string{
		report.Running: "the daemon restarted during turn 1; the turn was stopped and the session is idle",
		report.Queued:  "the daemon restarted while the turn was waiting for a slot; it did not run and the session is idle",
	} {
		rec := mustGet(t, rig, id)
		assert.Equal(t, statusIdle, rec.Status, "a restart ends the turn, not the session")
		assert.Nil(t, rec.EndedAt)
		assert.Nil(t, rec.Process)
		types := rig.types(id)
		assert.Equal(t, []string{eventSessionError, eventStatusIdle}, types[len(types)-2:])
		errType, message := rig.sessionError(id)
		assert.Equal(t, errorTypeUnknown, errType)
		assert.Equal(t, wantMessage, message)
		select {
		case <-b.Done(id):
		default:
			t.Errorf("session %s is not done after the restart", id)
		}
	}
	// The leftover harness and its child were killed by the new process.
	require.Eventually(t, func() bool { return processGone(report.HarnessPID) && processGone(report.ChildPID) },
		waitLimit, 10*time.Millisecond)

	// The restarted backend works as usual.
	id, err := b.CreateSession(t.Context(), sessions.CreateRequest{Agent: sessions.AgentRef{ID: "agent_block", Version: 1},
		EnvironmentID: testEnvironment, InitialEvents: []json.RawMessage{userMessage("again")}})
	require.NoError(t, err)
	rig.waitForText(id, "ready ")
	_, err = b.interrupt(id)
	require.NoError(t, err)
	<-b.Done(id)
}

func TestCloseWaitsForHarnessesUntilItsDeadline(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "release")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	rig := newRig(t, []Agent{
		shAgent("agent_waits", `echo ready; read line < "`+fifo+`"; echo "released: $line"`),
		shAgent("agent_block", blockingScript),
	}, func(c *Config) { c.MaxConcurrentSessions = 2 })

	// With time left, Close lets a harness finish on its own.
	waits := rig.create("agent_waits", nil)
	rig.waitForText(waits, "ready")
	closed := make(chan error, 1)
	go func() { closed <- rig.b.Close(context.Background()) }()
	require.NoError(t, os.WriteFile(fifo, []byte("go\n"), 0o600))
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(waitLimit):
		t.Fatal("Close did not return")
	}
	assert.Equal(t, statusIdle, mustGet(t, rig, waits).Status)
	assert.Equal(t, []string{"ready", "released: go"}, rig.texts(waits))

	_, err := rig.b.CreateSession(t.Context(), rig.request("agent_block", nil))
	var runErr *sessions.RunError
	require.ErrorAs(t, err, &runErr)
	assert.Equal(t, sessions.ErrSessionCreationRejected, runErr.Type)
}

func TestCloseStopsTurnsPastItsDeadline(t *testing.T) {
	rig := newRig(t, []Agent{shAgent("agent_block", blockingScript)}, func(c *Config) { c.MaxConcurrentSessions = 1 })
	running := rig.create("agent_block", nil)
	rig.waitForText(running, "ready ")
	queued := rig.create("agent_block", nil)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := rig.b.Close(ctx)
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.Canceled))

	for id, want := range map[string]string{
		running: "the daemon shut down during the turn; it was stopped and the session is idle",
		queued:  "the daemon shut down before the turn started; the session is idle",
	} {
		assert.Equal(t, statusIdle, mustGet(t, rig, id).Status)
		_, message := rig.sessionError(id)
		assert.Equal(t, want, message)
	}
}
