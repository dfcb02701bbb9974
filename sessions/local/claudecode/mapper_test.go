package claudecode

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/sandbox0/sandbox0d/sessions/local/harness"
)

// recorder is a harness.Sink that keeps what it is given.
type recorder struct {
	events []json.RawMessage
	usage  harness.Usage
	pids   []int
}

func (r *recorder) Emit(ev json.RawMessage) error {
	r.events = append(r.events, bytes.Clone(ev))
	return nil
}

func (r *recorder) EmitText(text string) error { return r.Emit(harness.TextMessage(text)) }

func (r *recorder) Usage(u harness.Usage) {
	r.usage.InputTokens += u.InputTokens
	r.usage.OutputTokens += u.OutputTokens
	r.usage.CacheReadInputTokens += u.CacheReadInputTokens
	r.usage.CacheCreation5mTokens += u.CacheCreation5mTokens
	r.usage.CacheCreation1hTokens += u.CacheCreation1hTokens
	r.usage.ListCostMicros += u.ListCostMicros
	if u.ListCostCurrency != "" {
		r.usage.ListCostCurrency = u.ListCostCurrency
	}
}

func (r *recorder) ProcessStarted(pid int) { r.pids = append(r.pids, pid) }

func (r *recorder) types() []string {
	var out []string
	for _, ev := range r.events {
		var head struct{ Type string }
		_ = json.Unmarshal(ev, &head)
		out = append(out, head.Type)
	}
	return out
}

// sdkEvents decodes the events with the official Go SDK's session event
// union (processed_at added, as the backend stamps it), failing on any
// required field the event lacks.
func sdkEvents(t *testing.T, events []json.RawMessage) []anthropic.BetaManagedAgentsSessionEventUnion {
	t.Helper()
	var out []anthropic.BetaManagedAgentsSessionEventUnion
	for _, raw := range events {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			t.Fatalf("event %s: %v", raw, err)
		}
		obj["processed_at"], _ = json.Marshal(time.Now().UTC())
		stamped, _ := json.Marshal(obj)
		var u anthropic.BetaManagedAgentsSessionEventUnion
		if err := json.Unmarshal(stamped, &u); err != nil {
			t.Fatalf("event %s: the SDK cannot decode it: %v", raw, err)
		}
		var required []string
		switch u.Type {
		case evAgentMessage:
			required = []string{"id", "content"}
		case evAgentThinking, evSpanStart:
			required = []string{"id"}
		case evAgentToolUse:
			required = []string{"id", "name", "input"}
		case evAgentMCPToolUse:
			required = []string{"id", "name", "input", "mcp_server_name"}
		case evAgentToolResult:
			required = []string{"id", "tool_use_id"}
		case evAgentMCPToolResult:
			required = []string{"id", "mcp_tool_use_id"}
		case evSpanEnd:
			required = []string{"id", "is_error", "model_request_start_id", "model_usage"}
		case "session.error":
			required = []string{"error"}
		default:
			t.Fatalf("unexpected event type %q", u.Type)
		}
		for _, f := range required {
			if _, ok := obj[f]; !ok {
				t.Errorf("%s event lacks required field %s: %s", u.Type, f, raw)
			}
		}
		// The backend stores what fails its check as text: every mapped
		// event must pass it.
		if _, err := harness.CheckEvent(obj); err != nil {
			t.Errorf("the backend would store this event as text: %v: %s", err, raw)
		}
		if u.Type != "session.error" && !harness.IsEventID(u.ID) {
			t.Errorf("%s event id %q is not one the backend keeps", u.Type, u.ID)
		}
		if u.Type != "session.error" && !officialEventID.MatchString(u.ID) {
			t.Errorf("%s event id %q is not sevt_ + 24 of [0-9A-Za-z] (the official alphabet)", u.Type, u.ID)
		}
		out = append(out, u)
	}
	return out
}

func feedFile(t *testing.T, m *Mapper, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if err := m.Line(sc.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
}

// testdata/tool-use.jsonl is what Claude Code 2.1.328 printed for a turn in
// which the model thought, said something, ran Bash, then answered.
func TestMapsRecordedToolUseTurn(t *testing.T) {
	rec := &recorder{}
	var unknown [][]byte
	m := &Mapper{Emit: rec.Emit, Usage: rec.Usage, Unknown: func(l []byte) { unknown = append(unknown, l) }}
	feedFile(t, m, "testdata/tool-use.jsonl")
	if err := m.Finish(); err != nil {
		t.Fatal(err)
	}
	want := []string{evSpanStart, evAgentThinking, evAgentMessage, evAgentToolUse, evSpanEnd, evAgentToolResult,
		evSpanStart, evAgentMessage, evSpanEnd}
	if got := rec.types(); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if len(unknown) != 0 {
		t.Errorf("unmapped lines: %q", unknown)
	}
	evs := sdkEvents(t, rec.events)
	start, end := evs[0].AsSpanModelRequestStart(), evs[4].AsSpanModelRequestEnd()
	if end.ModelRequestStartID != start.ID || end.IsError {
		t.Errorf("span end %+v does not close start %s", end, start.ID)
	}
	if u := end.ModelUsage; u.InputTokens != 100 || u.OutputTokens != 50 || u.CacheReadInputTokens != 7 || u.CacheCreationInputTokens != 3 {
		t.Errorf("first call usage %+v", u)
	}
	if msg := evs[2].AsAgentMessage(); len(msg.Content) != 1 || msg.Content[0].Type != "text" || msg.Content[0].Text != "Writing the file." {
		t.Errorf("message %+v", msg)
	}
	use := evs[3].AsAgentToolUse()
	if use.Name != "Bash" || use.Input["command"] != "echo hi > out.txt" {
		t.Errorf("tool use %+v", use)
	}
	result := evs[5].AsAgentToolResult()
	if result.ToolUseID != use.ID || result.IsError || len(result.Content) != 1 || result.Content[0].Text != "(Bash completed with no output)" {
		t.Errorf("tool result %+v (tool use %s)", result, use.ID)
	}
	if got := evs[7].AsAgentMessage().Content[0].Text; got != "Done." {
		t.Errorf("final message %q", got)
	}
	if got := (harness.Usage{InputTokens: 200, OutputTokens: 55, CacheReadInputTokens: 14, CacheCreation5mTokens: 6}); rec.usage != got || m.Tokens() != got {
		t.Errorf("usage %+v, tokens %+v, want %+v", rec.usage, m.Tokens(), got)
	}
	out := m.Outcome(0)
	if !out.HasResult || out.StopReason != StopEndTurn || out.Failure != nil || out.CostMicros != 1452 || out.TotalCostMicros != 1452 {
		t.Errorf("outcome %+v", out)
	}
	if m.SessionID() != "2ade7aee-a7a6-4149-a383-782baf4492ab" || m.ModelCalls() != 2 {
		t.Errorf("session %q calls %d", m.SessionID(), m.ModelCalls())
	}
}

// testdata/budget.jsonl is a resumed turn (recorded without partial
// messages) that Claude Code stopped for its --max-budget-usd: its
// total_cost_usd is cumulative over the resumed conversation.
func TestMapsRecordedBudgetStop(t *testing.T) {
	rec := &recorder{}
	m := &Mapper{Emit: rec.Emit, Usage: rec.Usage}
	feedFile(t, m, "testdata/budget.jsonl")
	out := m.Outcome(1452)
	// total grew by 2516-1452 = 1064; since the last result: ceil(1063.35).
	if out.StopReason != StopBudgetReached || out.Failure != nil || out.CostMicros != 1064 || out.TotalCostMicros != 2516 {
		t.Errorf("outcome %+v", out)
	}
	if got, want := rec.types(), []string{evAgentThinking, evAgentMessage, evAgentToolUse}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	// An interrupted turn that never reported is charged on the next one.
	if out := m.Outcome(1000); out.CostMicros != 1516 {
		t.Errorf("after an unreported turn: cost %d", out.CostMicros)
	}
}

func TestMCPToolsAndResultContent(t *testing.T) {
	rec := &recorder{}
	var unknown []string
	m := &Mapper{Emit: rec.Emit, Unknown: func(l []byte) { unknown = append(unknown, string(l)) }}
	lines := []string{
		`{"type":"assistant","message":{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"mcp__github__create_issue","input":{"title":"x"}},{"type":"tool_use","id":"t2","name":"Read","input":null},{"type":"redacted_thinking","data":"…"}]}}`,
		`{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"created #7"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw=="}},{"type":"tool_reference","name":"z"}]},{"type":"tool_result","tool_use_id":"t2","content":"boom","is_error":true}]}}`,
		`{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t-unknown","content":"?"}]}}`,
		`{"type":"user","message":{"role":"user","content":"[Request interrupted by user]"}}`,
	}
	for _, l := range lines {
		if err := m.Line([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := rec.types(), []string{evAgentMCPToolUse, evAgentToolUse, evAgentThinking, evAgentMCPToolResult, evAgentToolResult}; !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	evs := sdkEvents(t, rec.events)
	mcp := evs[0].AsAgentMCPToolUse()
	if mcp.Name != "create_issue" || mcp.MCPServerName != "github" || mcp.Input["title"] != "x" {
		t.Errorf("mcp tool use %+v", mcp)
	}
	if in := evs[1].AsAgentToolUse().Input; in == nil || len(in) != 0 {
		t.Errorf("null input became %v", in)
	}
	mr := evs[3].AsAgentMCPToolResult()
	if mr.MCPToolUseID != mcp.ID || len(mr.Content) != 3 || mr.Content[0].Text != "created #7" || mr.Content[1].Type != "image" ||
		mr.Content[1].Source.MediaType != "image/png" || !strings.Contains(mr.Content[2].Text, "tool_reference") {
		t.Errorf("mcp tool result %+v", mr)
	}
	if tr := evs[4].AsAgentToolResult(); !tr.IsError || tr.Content[0].Text != "boom" || tr.ToolUseID != evs[1].ID {
		t.Errorf("tool result %+v", tr)
	}
	if len(unknown) != 2 {
		t.Errorf("unknown lines %q: want the orphan tool result and the interruption note", unknown)
	}
}

func TestSpansOfCallsThatNeverFinish(t *testing.T) {
	rec := &recorder{}
	m := &Mapper{Emit: rec.Emit, Usage: rec.Usage}
	start := `{"type":"stream_event","event":{"type":"message_start","message":{"usage":{"input_tokens":40,"cache_creation_input_tokens":9,"cache_creation":{"ephemeral_5m_input_tokens":4,"ephemeral_1h_input_tokens":5},"output_tokens":1,"speed":"fast"}}}}`
	for _, l := range []string{start, start,
		`{"type":"stream_event","event":{"type":"message_delta","usage":{"output_tokens":12}}}`} {
		if err := m.Line([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Finish(); err != nil {
		t.Fatal(err)
	}
	evs := sdkEvents(t, rec.events)
	if got := rec.types(); !slices.Equal(got, []string{evSpanStart, evSpanEnd, evSpanStart, evSpanEnd}) {
		t.Fatalf("events %v", got)
	}
	first, second := evs[1].AsSpanModelRequestEnd(), evs[3].AsSpanModelRequestEnd()
	if !first.IsError || first.ModelRequestStartID != evs[0].ID || first.ModelUsage.OutputTokens != 1 {
		t.Errorf("first span end %+v", first)
	}
	if !second.IsError || second.ModelRequestStartID != evs[2].ID || second.ModelUsage.OutputTokens != 12 ||
		second.ModelUsage.CacheCreationInputTokens != 9 || second.ModelUsage.Speed != "fast" {
		t.Errorf("second span end %+v", second)
	}
	if rec.usage.CacheCreation5mTokens != 8 || rec.usage.CacheCreation1hTokens != 10 || rec.usage.InputTokens != 80 {
		t.Errorf("usage %+v", rec.usage)
	}
	if out := m.Outcome(7); out.HasResult || out.Failure == nil || out.StopReason != StopRetriesExhausted || out.TotalCostMicros != 7 {
		t.Errorf("outcome without a result %+v", out)
	}
}

func TestOutcomes(t *testing.T) {
	cases := []struct {
		line, stop, errType, msg string
	}{
		{`{"type":"result","subtype":"success","is_error":false,"total_cost_usd":0.5}`, StopEndTurn, "", ""},
		{`{"type":"result","subtype":"error_max_budget_usd","is_error":true,"errors":["Reached maximum budget ($0.01)"]}`, StopBudgetReached, "", ""},
		{`{"type":"result","subtype":"error_max_turns","is_error":true,"num_turns":3}`, StopRetriesExhausted, "tool_use_limit_reached_error", "max_turns"},
		{`{"type":"result","subtype":"success","is_error":true,"result":"API Error: 401 invalid x-api-key","api_error_status":401}`, StopRetriesExhausted, "model_request_failed_error", "401"},
		{`{"type":"result","subtype":"error_during_execution","is_error":true,"api_error_status":529}`, StopRetriesExhausted, "model_overloaded_error", "error_during_execution"},
		{`{"type":"result","subtype":"error_during_execution","is_error":true,"api_error_status":429,"errors":["slow down"]}`, StopRetriesExhausted, "model_rate_limited_error", "slow down"},
		{`{"type":"result","subtype":"something_new","is_error":true}`, StopRetriesExhausted, "unknown_error", "something_new"},
	}
	for _, tc := range cases {
		rec := &recorder{}
		m := &Mapper{Emit: rec.Emit}
		if err := m.Line([]byte(tc.line)); err != nil {
			t.Fatal(err)
		}
		out := m.Outcome(0)
		if out.StopReason != tc.stop {
			t.Errorf("%s: stop %q, want %q", tc.line, out.StopReason, tc.stop)
		}
		switch {
		case tc.errType == "" && out.Failure != nil:
			t.Errorf("%s: unexpected failure %+v", tc.line, out.Failure)
		case tc.errType != "" && (out.Failure == nil || out.Failure.Type != tc.errType || !strings.Contains(out.Failure.Message, tc.msg)):
			t.Errorf("%s: failure %+v, want %s mentioning %q", tc.line, out.Failure, tc.errType, tc.msg)
		}
		if tc.errType != "" {
			ev := sdkEvents(t, []json.RawMessage{errorEvent(out.Failure)})[0].AsSessionError()
			if ev.Error.Type != tc.errType || ev.Error.RetryStatus.Type != "exhausted" {
				t.Errorf("session.error %+v", ev)
			}
		}
	}
}

func TestMicros(t *testing.T) {
	for usd, want := range map[float64]int64{0: 0, -1: 0, 0.000001: 1, 0.0014517000000000002: 1452, 0.01: 10000, 1e12: 1e15} {
		if got := micros(usd); got != want {
			t.Errorf("micros(%v) = %d, want %d", usd, got, want)
		}
	}
}

// The mapper must never fail or panic on input, whatever Claude Code (or a
// binary posing as it) prints, and every line it does not map must reach
// Unknown.
func FuzzMapper(f *testing.F) {
	for _, path := range []string{"testdata/tool-use.jsonl", "testdata/budget.jsonl"} {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		for _, l := range bytes.Split(data, []byte("\n")) {
			f.Add(l)
		}
	}
	f.Add([]byte(`{"type":"assistant","message":{"content":"plain"}}`))
	f.Add([]byte(`{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"x","content":null}]}}`))
	f.Add([]byte(`{"type":"stream_event","event":{"type":"message_stop"}}`))
	f.Add([]byte(`{"type":"result","total_cost_usd":1e400}`))
	f.Add([]byte("not json"))
	f.Fuzz(func(t *testing.T, line []byte) {
		rec := &recorder{}
		m := &Mapper{Emit: rec.Emit, Usage: rec.Usage, Unknown: func([]byte) {}}
		for i := 0; i < 2; i++ { // twice: a tool_use then its result may pair up
			if err := m.Line(line); err != nil {
				t.Fatal(err)
			}
		}
		if err := m.Finish(); err != nil {
			t.Fatal(err)
		}
		for _, ev := range rec.events {
			if !json.Valid(ev) {
				t.Fatalf("invalid event JSON %s", ev)
			}
		}
		_ = m.Outcome(0)
	})
}

func TestTurnText(t *testing.T) {
	turn := harness.Turn{Prompt: "fallback", Events: []json.RawMessage{
		json.RawMessage(`{"type":"system.message","content":[{"type":"text","text":"be brief"}]}`),
		json.RawMessage(`{"type":"user.message","content":[{"type":"text","text":"first"},{"type":"image","source":{}}]}`),
		json.RawMessage(`{"type":"user.message","content":[{"type":"text","text":"second"}]}`),
		json.RawMessage(`not json`),
	}}
	if p, s := turnText(turn); p != "first\n\nsecond" || s != "be brief" {
		t.Errorf("prompt %q system %q", p, s)
	}
	if p, s := turnText(harness.Turn{Prompt: "fallback"}); p != "fallback" || s != "" {
		t.Errorf("no events: %q %q", p, s)
	}
}

var officialEventID = regexp.MustCompile(`^sevt_[0-9A-Za-z]{24,}$`)
