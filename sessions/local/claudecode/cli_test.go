package claudecode

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/sandbox0/sandbox0d/internal/fakemessages"
	"github.com/sandbox0/sandbox0d/sessions/local/harness"
	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
)

// These tests run the real Claude Code CLI pinned in testdata/claude-code
// (npm ci --prefix testdata/claude-code; CI does it) against the fake
// Messages API. They skip only when it is not installed.

const (
	testModel = "claude-sonnet-5-5"
	testKey   = "sk-ant-test-Zq81secret"
)

func cliBinary(t *testing.T) Binary {
	t.Helper()
	path, err := filepath.Abs("../../../testdata/claude-code/node_modules/.bin/claude")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Skip("Claude Code is not installed: run npm ci --prefix testdata/claude-code")
	}
	b, err := ResolveBinary(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// plainSandbox starts processes unconfined in the workspace, like the
// sandbox package's none mode. Each test has its own session id: the none
// mode kills every process marked with it when a process ends, so tests
// running at once must not share one.
type plainSandbox struct{ dir, sessionID string }

func (s plainSandbox) Command(argv, env []string) (*sandbox.Process, error) {
	return sandbox.None{}.Command(sandbox.Spec{SessionID: s.sessionID, Argv: argv, Env: env, Dir: s.dir, Workspace: s.dir})
}

type cliEnv struct {
	fake      *fakemessages.Server
	workspace string
	sessionID string
	bin       Binary
}

func newCLIEnv(t *testing.T, script ...fakemessages.Reply) *cliEnv {
	bin := cliBinary(t)
	return &cliEnv{
		fake:      fakemessages.New(t, fakemessages.Options{APIKey: testKey, Model: testModel, Script: script}),
		workspace: t.TempDir(),
		sessionID: "sesn_cli_" + strings.ToLower(strings.TrimPrefix(harness.NewEventID(), harness.EventIDPrefix)),
		bin:       bin,
	}
}

func (e *cliEnv) turn(n int, text string, env ...string) harness.Turn {
	msg, _ := json.Marshal(map[string]any{"type": "user.message", "id": harness.NewEventID(),
		"content": []map[string]string{{"type": "text", "text": text}}})
	base := []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "ANTHROPIC_BASE_URL=" + e.fake.URL}
	return harness.Turn{SessionID: e.sessionID, Number: n, Prompt: text,
		Events: []json.RawMessage{msg}, Workspace: e.workspace, Env: append(base, env...),
		Sandbox: plainSandbox{dir: e.workspace, sessionID: e.sessionID}, KillGracePeriod: 5 * time.Second}
}

func (e *cliEnv) harness() Harness {
	// Confined stands in for the sandbox here: it picks bypassPermissions
	// and IS_SANDBOX, which Claude Code needs to run tools as root.
	return Harness{Config: Config{Model: testModel}, Binary: e.bin, Confined: true}
}

func runTurn(t *testing.T, ctx context.Context, h Harness, turn harness.Turn) (*recorder, harness.Result, error) {
	t.Helper()
	rec := &recorder{}
	res, err := h.RunTurn(ctx, turn, rec)
	return rec, res, err
}

func noKey(t *testing.T, rec *recorder, res harness.Result, e *cliEnv) {
	t.Helper()
	for _, ev := range rec.events {
		if strings.Contains(string(ev), testKey) {
			t.Errorf("the API key is in an event: %s", ev)
		}
	}
	if strings.Contains(string(res.Stderr), testKey) {
		t.Errorf("the API key is in the harness log")
	}
	if v := e.fake.Violations(); len(v) > 0 {
		t.Errorf("the fake API refused requests: %q", v)
	}
}

func indexOf(types []string, want string, from int) int {
	for i := from; i < len(types); i++ {
		if types[i] == want {
			return i
		}
	}
	return -1
}

// The model runs Bash to write a file; a second turn resumes the
// conversation and the model's request holds the first turn.
func TestCLIToolUseThenResume(t *testing.T) {
	t.Parallel() // it waits on a Claude Code process; each has its own fake API and workspace
	e := newCLIEnv(t,
		fakemessages.Reply{Blocks: []fakemessages.Block{fakemessages.Thinking("A file, then."), fakemessages.Text("Writing it."),
			fakemessages.ToolUse("Bash", map[string]any{"command": "printf 'hello from bash' > note.txt", "description": "write note"})},
			Usage: &fakemessages.Usage{InputTokens: 1200, OutputTokens: 80, CacheReadInputTokens: 30}},
		fakemessages.Reply{Blocks: []fakemessages.Block{fakemessages.Text("I wrote note.txt.")}},
		fakemessages.Reply{Blocks: []fakemessages.Block{fakemessages.Text("It says hello from bash.")}},
	)
	ctx := context.Background()
	rec, res, err := runTurn(t, ctx, e.harness(), e.turn(1, "Write a note", "ANTHROPIC_API_KEY="+testKey))
	if err != nil {
		t.Fatalf("turn 1: %v\nlog: %s", err, res.Stderr)
	}
	noKey(t, rec, res, e)
	if data, err := os.ReadFile(filepath.Join(e.workspace, "note.txt")); err != nil || string(data) != "hello from bash" {
		t.Fatalf("note.txt: %q %v", data, err)
	}
	types := rec.types()
	use := indexOf(types, evAgentToolUse, 0)
	result := indexOf(types, evAgentToolResult, use)
	msg := indexOf(types, evAgentMessage, result)
	if use < 0 || result < 0 || msg < 0 || res.StopReason != StopEndTurn {
		t.Fatalf("events %v stop %q", types, res.StopReason)
	}
	evs := sdkEvents(t, rec.events)
	if u := evs[use].AsAgentToolUse(); u.Name != "Bash" || evs[result].AsAgentToolResult().ToolUseID != u.ID || evs[result].AsAgentToolResult().IsError {
		t.Errorf("tool use %+v result %+v", u, evs[result].AsAgentToolResult())
	}
	if got := evs[msg].AsAgentMessage().Content[0].Text; got != "I wrote note.txt." {
		t.Errorf("final message %q", got)
	}
	if n := strings.Count(strings.Join(types, " "), evSpanEnd); n != 2 {
		t.Errorf("%d model request spans in %v", n, types)
	}
	if rec.usage.InputTokens < 1200 || rec.usage.OutputTokens < 80 || rec.usage.CacheReadInputTokens != 30 ||
		rec.usage.ListCostMicros <= 0 || rec.usage.ListCostCurrency != "USD" {
		t.Errorf("usage %+v", rec.usage)
	}
	if home := filepath.Join(e.workspace, HomeDirName); !dirExists(home) {
		t.Errorf("Claude Code's HOME %s was not used", home)
	}

	rec2, res2, err := runTurn(t, ctx, e.harness(), e.turn(2, "What does it say?", "ANTHROPIC_API_KEY="+testKey))
	if err != nil {
		t.Fatalf("turn 2: %v\nlog: %s", err, res2.Stderr)
	}
	noKey(t, rec2, res2, e)
	calls := e.fake.ModelCalls()
	if len(calls) != 3 {
		t.Fatalf("%d model calls", len(calls))
	}
	var history []string
	for _, m := range calls[2].Messages {
		history = append(history, m.Role+": "+m.Text())
	}
	joined := strings.Join(history, "\n")
	for _, want := range []string{"Write a note", "Writing it.", "I wrote note.txt.", "What does it say?"} {
		if !strings.Contains(joined, want) {
			t.Errorf("turn 2's request lacks %q:\n%s", want, joined)
		}
	}
	if got := rec2.types(); indexOf(got, evAgentMessage, 0) < 0 || res2.StopReason != StopEndTurn {
		t.Errorf("turn 2 events %v stop %q", got, res2.StopReason)
	}
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// Outside a sandbox the default permission mode applies: a tool call that
// needs approval fails visibly instead of running.
func TestCLIUnconfinedToolNeedsApproval(t *testing.T) {
	t.Parallel() // it waits on a Claude Code process; each has its own fake API and workspace
	e := newCLIEnv(t,
		fakemessages.Reply{Blocks: []fakemessages.Block{fakemessages.ToolUse("Bash", map[string]any{"command": "touch pwned"})}},
		fakemessages.Reply{Blocks: []fakemessages.Block{fakemessages.Text("I could not.")}},
	)
	h := e.harness()
	h.Confined = false
	rec, res, err := runTurn(t, context.Background(), h, e.turn(1, "touch a file", "ANTHROPIC_API_KEY="+testKey))
	if err != nil {
		t.Fatalf("%v\nlog: %s", err, res.Stderr)
	}
	if _, err := os.Stat(filepath.Join(e.workspace, "pwned")); err == nil {
		t.Fatal("the tool ran without approval")
	}
	evs := sdkEvents(t, rec.events)
	i := indexOf(rec.types(), evAgentToolResult, 0)
	if i < 0 || !evs[i].AsAgentToolResult().IsError {
		t.Fatalf("no failed tool result in %v", rec.types())
	}
}

// A one-cent budget and a model call that costs more: Claude Code stops
// after that one call and the turn ends budget_reached; a turn of a session
// already at its cap does not start Claude Code at all.
func TestCLIBudget(t *testing.T) {
	t.Parallel() // it waits on a Claude Code process; each has its own fake API and workspace
	e := newCLIEnv(t, fakemessages.Reply{
		Blocks: []fakemessages.Block{fakemessages.ToolUse("Bash", map[string]any{"command": "true"})},
		// 10k output tokens of Sonnet 5.5 list at $0.10 (and 100 input tokens at $0.0002).
		Usage: &fakemessages.Usage{InputTokens: 100, OutputTokens: 10_000},
	})
	h := e.harness()
	h.LimitMicros = 10_000
	rec, res, err := runTurn(t, context.Background(), h, e.turn(1, "spend", "ANTHROPIC_API_KEY="+testKey))
	if err != nil {
		t.Fatalf("%v\nlog: %s", err, res.Stderr)
	}
	noKey(t, rec, res, e)
	if res.StopReason != StopBudgetReached || len(e.fake.ModelCalls()) != 1 {
		t.Fatalf("stop %q after %d model calls; events %v", res.StopReason, len(e.fake.ModelCalls()), rec.types())
	}
	if rec.usage.ListCostMicros < 100_000 {
		t.Errorf("list cost %d micros, want ≥ $0.10", rec.usage.ListCostMicros)
	}
	if strings.Contains(strings.Join(rec.types(), " "), "session.error") {
		t.Errorf("a budget stop is not an error: %v", rec.types())
	}

	h.SpentMicros = rec.usage.ListCostMicros
	rec2, res2, err := runTurn(t, context.Background(), h, e.turn(2, "more", "ANTHROPIC_API_KEY="+testKey))
	if err != nil || res2.StopReason != StopBudgetReached || len(rec2.events) != 0 || len(e.fake.ModelCalls()) != 1 {
		t.Errorf("at the cap: %v stop %q events %v calls %d", err, res2.StopReason, rec2.types(), len(e.fake.ModelCalls()))
	}
}

// No credential in the environment: the turn fails at once, naming the
// fix, and Claude Code never runs.
func TestCLINoCredentials(t *testing.T) {
	t.Parallel() // it waits on a Claude Code process; each has its own fake API and workspace
	e := newCLIEnv(t)
	rec, _, err := runTurn(t, context.Background(), e.harness(), e.turn(1, "hello"))
	if !errors.Is(err, ErrNoCredentials) || !strings.Contains(err.Error(), "Attach exactly one LLM vault") {
		t.Fatalf("err %v", err)
	}
	if len(rec.pids) != 0 || len(e.fake.Requests()) != 0 {
		t.Errorf("Claude Code ran: pids %v, requests %d", rec.pids, len(e.fake.Requests()))
	}
}

// A key the API rejects: Claude Code reports the failure in its result,
// which becomes a session.error and a retries_exhausted stop.
func TestCLIRejectedKey(t *testing.T) {
	t.Parallel() // it waits on a Claude Code process; each has its own fake API and workspace
	e := newCLIEnv(t)
	rec, res, err := runTurn(t, context.Background(), e.harness(), e.turn(1, "hello", "ANTHROPIC_API_KEY=sk-ant-wrong",
		"CLAUDE_CODE_MAX_RETRIES=0")) // Claude Code retries even a 401 for minutes otherwise
	if err != nil {
		t.Fatalf("%v\nlog: %s", err, res.Stderr)
	}
	evs := sdkEvents(t, rec.events)
	i := indexOf(rec.types(), "session.error", 0)
	if i < 0 || res.StopReason != StopRetriesExhausted {
		t.Fatalf("events %v stop %q", rec.types(), res.StopReason)
	}
	if se := evs[i].AsSessionError().Error; se.Type != "model_request_failed_error" || !strings.Contains(se.Message, "Invalid API key") {
		t.Errorf("session.error %s", evs[i].RawJSON())
	}
	if n := len(e.fake.Violations()); n < 1 {
		t.Errorf("the fake saw %d refused requests", n)
	}
}

// An interrupted turn stops Claude Code mid-request; the next turn resumes
// the conversation.
func TestCLIInterruptThenResume(t *testing.T) {
	t.Parallel() // it waits on a Claude Code process; each has its own fake API and workspace
	stall := make(chan struct{})
	defer close(stall)
	e := newCLIEnv(t,
		fakemessages.Reply{Blocks: []fakemessages.Block{fakemessages.Text("a very long answer")}, Stall: stall},
	)
	e.fake.Push(fakemessages.Reply{Blocks: []fakemessages.Block{fakemessages.Text("Resumed.")}})
	ctx, cancel := context.WithCancelCause(context.Background())
	errInterrupted := errors.New("user.interrupt")
	// The interrupt comes once the turn has recorded the call's span start
	// (the stream is then stalled after message_start), not when the fake
	// API has sent message_start: the CLI may not have printed it yet, and
	// an interrupt before it leaves no span to close.
	rec := &recorder{}
	spanStarted := make(chan struct{})
	sink := &emitWatch{recorder: rec, typ: evSpanStart, seen: spanStarted}
	go func() {
		<-spanStarted
		cancel(errInterrupted)
	}()
	begin := time.Now()
	res, err := e.harness().RunTurn(ctx, e.turn(1, "Tell me everything", "ANTHROPIC_API_KEY="+testKey), sink)
	if !errors.Is(err, errInterrupted) {
		t.Fatalf("interrupted turn: %v\nlog: %s", err, res.Stderr)
	}
	if d := time.Since(begin); d > 60*time.Second {
		t.Errorf("the interrupt took %v", d)
	}
	types := rec.types()
	if indexOf(types, evSpanStart, 0) < 0 || indexOf(types, evSpanEnd, 0) < 0 {
		t.Errorf("the interrupted call's span is not closed: %v", types)
	} else if end := sdkEvents(t, rec.events)[indexOf(types, evSpanEnd, 0)].AsSpanModelRequestEnd(); !end.IsError {
		t.Errorf("interrupted span end %+v", end)
	}

	rec2, res2, err := runTurn(t, context.Background(), e.harness(), e.turn(2, "Go on", "ANTHROPIC_API_KEY="+testKey))
	if err != nil || res2.StopReason != StopEndTurn {
		t.Fatalf("resumed turn: %v stop %q\nlog: %s", err, res2.StopReason, res2.Stderr)
	}
	calls := e.fake.ModelCalls()
	last := calls[len(calls)-1]
	var texts []string
	for _, m := range last.Messages {
		texts = append(texts, m.Text())
	}
	if !strings.Contains(strings.Join(texts, "\n"), "Tell me everything") || !slices.Contains(rec2.types(), evAgentMessage) {
		t.Errorf("the resumed turn lost the conversation: %q, events %v", texts, rec2.types())
	}
	_ = anthropic.BetaManagedAgentsSessionEventUnion{}
}

// emitWatch records like recorder and closes seen the first time an event
// of type typ is emitted.
type emitWatch struct {
	*recorder
	typ  string
	seen chan struct{}
	once sync.Once
}

func (w *emitWatch) Emit(ev json.RawMessage) error {
	err := w.recorder.Emit(ev)
	var head struct{ Type string }
	if json.Unmarshal(ev, &head) == nil && head.Type == w.typ {
		w.once.Do(func() { close(w.seen) })
	}
	return err
}

// bwrapSandbox adapts the bubblewrap sandbox to the harness seam the way
// the backend does: the workspace the only writable path, HOME inside it,
// the claude binary's directories shown read-only.
type bwrapSandbox struct {
	sb   sandbox.Sandbox
	spec sandbox.Spec
}

func (s bwrapSandbox) Command(argv, env []string) (*sandbox.Process, error) {
	spec := s.spec
	spec.Argv, spec.Env = argv, env
	return s.sb.Command(spec)
}

// The real CLI inside bubblewrap: Bash runs confined (the host's other
// directories are not there), writes into the workspace, and the turn maps
// as it does unconfined.
func TestCLIInBubblewrap(t *testing.T) {
	t.Parallel() // it waits on a Claude Code process; each has its own fake API and workspace
	e := newCLIEnv(t,
		fakemessages.Reply{Blocks: []fakemessages.Block{fakemessages.ToolUse("Bash", map[string]any{
			"command": "printf confined > note.txt; if [ -e " + e2eHostPath(t) + " ]; then echo visible > host.txt; fi"})}},
		fakemessages.Reply{Blocks: []fakemessages.Block{fakemessages.Text("Done.")}},
	)
	sb, err := sandbox.New(sandbox.Config{Mode: sandbox.ModeBubblewrap})
	if err != nil {
		t.Skipf("bubblewrap does not work here: %v", err)
	}
	home := filepath.Join(e.workspace, ".home")
	turn := e.turn(1, "write confined", "ANTHROPIC_API_KEY="+testKey)
	turn.Sandbox = bwrapSandbox{sb: sb, spec: sandbox.Spec{SessionID: turn.SessionID, Dir: e.workspace,
		Workspace: e.workspace, Home: home, ReadOnly: e.bin.ReadOnly}}
	h := e.harness()
	h.Home = home
	rec, res, err := runTurn(t, context.Background(), h, turn)
	if err != nil {
		t.Fatalf("%v\nlog: %s", err, res.Stderr)
	}
	noKey(t, rec, res, e)
	if data, err := os.ReadFile(filepath.Join(e.workspace, "note.txt")); err != nil || string(data) != "confined" {
		t.Fatalf("note.txt %q %v; events %v\nlog: %s", data, err, rec.types(), res.Stderr)
	}
	if _, err := os.Stat(filepath.Join(e.workspace, "host.txt")); err == nil {
		t.Error("the host's directories are visible inside the sandbox")
	}
	if !dirExists(filepath.Join(home, ".claude")) {
		t.Error("Claude Code did not keep its state in the sandbox HOME")
	}
	if types := rec.types(); indexOf(types, evAgentToolResult, indexOf(types, evAgentToolUse, 0)) < 0 || res.StopReason != StopEndTurn {
		t.Errorf("events %v stop %q", types, res.StopReason)
	}
}

// e2eHostPath is a host directory outside every path the sandbox shows:
// this test's own source directory.
func e2eHostPath(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}
