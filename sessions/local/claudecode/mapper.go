package claudecode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/sandbox0/sandbox0d/sessions/local/harness"
)

// Official session event types the mapper emits.
const (
	evAgentMessage       = "agent.message"
	evAgentThinking      = "agent.thinking"
	evAgentToolUse       = "agent.tool_use"
	evAgentToolResult    = "agent.tool_result"
	evAgentMCPToolUse    = "agent.mcp_tool_use"
	evAgentMCPToolResult = "agent.mcp_tool_result"
	evSpanStart          = "span.model_request_start"
	evSpanEnd            = "span.model_request_end"
)

// Stop reasons of session.status_idle a turn can end with.
const (
	StopEndTurn          = "end_turn"
	StopBudgetReached    = "budget_reached"
	StopRetriesExhausted = "retries_exhausted"
)

// Mapper turns the lines Claude Code prints with --output-format
// stream-json --verbose --include-partial-messages into official session
// events, and keeps the turn's usage and outcome. One Mapper serves one
// turn; it is not safe for concurrent use.
//
// The mapping:
//   - assistant text block → agent.message; thinking (and redacted
//     thinking) → agent.thinking; tool_use → agent.tool_use, or
//     agent.mcp_tool_use for mcp__<server>__<tool> names;
//   - a user line's tool_result → agent.tool_result / agent.mcp_tool_result
//     naming the id of the event its tool_use became;
//   - stream_event message_start → span.model_request_start, and its
//     message_stop → span.model_request_end with the call's usage (input
//     and cache tokens from message_start, output from message_delta); a
//     call that never reaches message_stop ends with is_error true;
//   - result → the turn's outcome (Outcome).
//
// Lines the mapper has no use for but knows (init, status pings, the
// content deltas whose blocks arrive whole in assistant lines) are
// skipped; anything else, including lines that are not JSON or have shapes
// it does not expect, goes to Unknown, so nothing is dropped silently and
// no input makes it fail.
type Mapper struct {
	// Emit gets each event. An error stops the mapping (Line returns it).
	Emit func(event json.RawMessage) error
	// Usage gets each finished model call's usage (tokens only; the cost
	// comes with the result, see Outcome).
	Usage func(u harness.Usage)
	// Unknown gets every line the mapper did not map (cut to a bounded
	// length by the caller's log).
	Unknown func(line []byte)
	// NewID mints event ids; default harness.NewEventID.
	NewID func() string

	sessionID string
	tools     map[string]toolRef // Claude Code tool_use id → its event
	span      *openSpan
	result    *resultLine
	calls     int
	tokens    harness.Usage
}

type toolRef struct {
	eventID string
	mcp     bool
}

type openSpan struct {
	eventID string
	usage   apiUsage
}

// apiUsage is a Messages API usage object.
type apiUsage struct {
	InputTokens              *int64 `json:"input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
	CacheCreation            *struct {
		Ephemeral5m int64 `json:"ephemeral_5m_input_tokens"`
		Ephemeral1h int64 `json:"ephemeral_1h_input_tokens"`
	} `json:"cache_creation"`
	Speed string `json:"speed"`
}

// merge overlays the fields later usage reports set (message_delta's usage
// is cumulative for the fields it carries).
func (u *apiUsage) merge(o apiUsage) {
	if o.InputTokens != nil {
		u.InputTokens = o.InputTokens
	}
	if o.OutputTokens != nil {
		u.OutputTokens = o.OutputTokens
	}
	if o.CacheCreationInputTokens != nil {
		u.CacheCreationInputTokens = o.CacheCreationInputTokens
	}
	if o.CacheReadInputTokens != nil {
		u.CacheReadInputTokens = o.CacheReadInputTokens
	}
	if o.CacheCreation != nil {
		u.CacheCreation = o.CacheCreation
	}
	if o.Speed != "" {
		u.Speed = o.Speed
	}
}

func val(p *int64) int64 {
	if p == nil || *p < 0 {
		return 0
	}
	return *p
}

func (u apiUsage) harnessUsage() harness.Usage {
	h := harness.Usage{InputTokens: val(u.InputTokens), OutputTokens: val(u.OutputTokens),
		CacheReadInputTokens: val(u.CacheReadInputTokens)}
	if u.CacheCreation != nil {
		h.CacheCreation5mTokens = max(u.CacheCreation.Ephemeral5m, 0)
		h.CacheCreation1hTokens = max(u.CacheCreation.Ephemeral1h, 0)
	}
	if rest := val(u.CacheCreationInputTokens) - h.CacheCreation5mTokens - h.CacheCreation1hTokens; rest > 0 {
		// Without the breakdown, cache writes are the API's default TTL.
		h.CacheCreation5mTokens += rest
	}
	return h
}

// line is the envelope of every stream-json line.
type line struct {
	Type      string          `json:"type"`
	Subtype   string          `json:"subtype"`
	SessionID string          `json:"session_id"`
	Message   json.RawMessage `json:"message"`
	Event     json.RawMessage `json:"event"`
}

type resultLine struct {
	Subtype        string   `json:"subtype"`
	IsError        bool     `json:"is_error"`
	Result         string   `json:"result"`
	Errors         []string `json:"errors"`
	StopReason     string   `json:"stop_reason"`
	TerminalReason string   `json:"terminal_reason"`
	TotalCostUSD   *float64 `json:"total_cost_usd"`
	APIErrorStatus *int     `json:"api_error_status"`
	NumTurns       int      `json:"num_turns"`
	SinceLast      map[string]struct {
		CostUSD float64 `json:"costUSD"`
	} `json:"model_usage_since_last_result"`
}

// Line maps one stdout line. Its error is Emit's.
func (m *Mapper) Line(raw []byte) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	var l line
	if raw[0] != '{' || json.Unmarshal(raw, &l) != nil {
		m.unknown(raw)
		return nil
	}
	if l.SessionID != "" && m.sessionID == "" {
		m.sessionID = l.SessionID
	}
	var err error
	handled := true
	switch l.Type {
	case "system":
		// init names the session and tools; status and thinking_tokens are
		// progress pings. Other subtypes (hooks, compaction, retries) are
		// worth an operator's look.
		handled = l.Subtype == "init" || l.Subtype == "status" || l.Subtype == "thinking_tokens"
	case "stream_event":
		handled, err = m.streamEvent(l.Event)
	case "assistant":
		handled, err = m.assistant(l.Message)
	case "user":
		handled, err = m.user(l.Message)
	case "result":
		var r resultLine
		if json.Unmarshal(raw, &r) != nil {
			handled = false
			break
		}
		m.result = &r
		err = m.closeSpan(true)
	default:
		handled = false
	}
	if !handled {
		m.unknown(raw)
	}
	return err
}

func (m *Mapper) unknown(raw []byte) {
	if m.Unknown != nil {
		m.Unknown(raw)
	}
}

func (m *Mapper) newID() string {
	if m.NewID != nil {
		return m.NewID()
	}
	return harness.NewEventID()
}

func (m *Mapper) emit(fields map[string]any) error {
	if m.Emit == nil {
		return nil
	}
	out, err := json.Marshal(fields)
	if err != nil { // only numbers that JSON cannot hold; never from decoded JSON
		return nil
	}
	return m.Emit(out)
}

func (m *Mapper) streamEvent(raw json.RawMessage) (bool, error) {
	var ev struct {
		Type    string `json:"type"`
		Message struct {
			Usage apiUsage `json:"usage"`
		} `json:"message"`
		Usage apiUsage `json:"usage"`
	}
	if json.Unmarshal(raw, &ev) != nil {
		return false, nil
	}
	switch ev.Type {
	case "message_start":
		// A call that never finished (a retry after a dropped stream)
		// ends as failed before the next one starts.
		if err := m.closeSpan(true); err != nil {
			return true, err
		}
		m.span = &openSpan{eventID: m.newID(), usage: ev.Message.Usage}
		m.calls++
		return true, m.emit(map[string]any{"type": evSpanStart, "id": m.span.eventID})
	case "message_delta":
		if m.span != nil {
			m.span.usage.merge(ev.Usage)
		}
		return m.span != nil, nil
	case "message_stop":
		if m.span == nil {
			return false, nil
		}
		return true, m.closeSpan(false)
	case "content_block_start", "content_block_delta", "content_block_stop", "ping":
		return true, nil
	}
	return false, nil
}

// closeSpan ends the open model request span, if any.
func (m *Mapper) closeSpan(failed bool) error {
	s := m.span
	if s == nil {
		return nil
	}
	m.span = nil
	u := s.usage.harnessUsage()
	m.tokens.InputTokens += u.InputTokens
	m.tokens.OutputTokens += u.OutputTokens
	m.tokens.CacheReadInputTokens += u.CacheReadInputTokens
	m.tokens.CacheCreation5mTokens += u.CacheCreation5mTokens
	m.tokens.CacheCreation1hTokens += u.CacheCreation1hTokens
	if m.Usage != nil {
		m.Usage(u)
	}
	usage := map[string]any{
		"input_tokens":                u.InputTokens,
		"output_tokens":               u.OutputTokens,
		"cache_read_input_tokens":     u.CacheReadInputTokens,
		"cache_creation_input_tokens": u.CacheCreation5mTokens + u.CacheCreation1hTokens,
	}
	if s.usage.Speed == "standard" || s.usage.Speed == "fast" {
		usage["speed"] = s.usage.Speed
	}
	return m.emit(map[string]any{"type": evSpanEnd, "id": m.newID(), "model_request_start_id": s.eventID,
		"is_error": failed, "model_usage": usage})
}

// contentBlock is an Anthropic content block as Claude Code prints it.
type contentBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   bool            `json:"is_error"`
}

type message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

func (msg message) blocks() ([]contentBlock, bool) {
	var s string
	if json.Unmarshal(msg.Content, &s) == nil {
		return []contentBlock{{Type: "text", Text: s}}, true
	}
	var blocks []contentBlock
	if json.Unmarshal(msg.Content, &blocks) != nil {
		return nil, false
	}
	return blocks, true
}

func (m *Mapper) assistant(raw json.RawMessage) (bool, error) {
	var msg message
	if json.Unmarshal(raw, &msg) != nil {
		return false, nil
	}
	blocks, ok := msg.blocks()
	if !ok {
		return false, nil
	}
	handled := true
	for _, b := range blocks {
		var err error
		switch b.Type {
		case "text":
			if b.Text == "" {
				continue
			}
			err = m.emit(map[string]any{"type": evAgentMessage, "id": m.newID(),
				"content": []map[string]string{{"type": "text", "text": b.Text}}})
		case "thinking", "redacted_thinking":
			// agent.thinking is a progress signal, not a content carrier.
			err = m.emit(map[string]any{"type": evAgentThinking, "id": m.newID()})
		case "tool_use", "server_tool_use":
			err = m.toolUse(b)
		default:
			handled = false
		}
		if err != nil {
			return true, err
		}
	}
	return handled, nil
}

func (m *Mapper) toolUse(b contentBlock) error {
	input := map[string]any{}
	if len(b.Input) > 0 && json.Unmarshal(b.Input, &input) != nil || input == nil {
		input = map[string]any{}
	}
	id := m.newID()
	if m.tools == nil {
		m.tools = map[string]toolRef{}
	}
	if server, tool, ok := mcpName(b.Name); ok {
		m.tools[b.ID] = toolRef{eventID: id, mcp: true}
		return m.emit(map[string]any{"type": evAgentMCPToolUse, "id": id, "name": tool,
			"mcp_server_name": server, "input": input})
	}
	m.tools[b.ID] = toolRef{eventID: id}
	return m.emit(map[string]any{"type": evAgentToolUse, "id": id, "name": b.Name, "input": input})
}

// mcpName splits Claude Code's mcp__<server>__<tool> tool names. A server
// name may not contain "__"; the tool's may.
func mcpName(name string) (server, tool string, ok bool) {
	rest, ok := strings.CutPrefix(name, "mcp__")
	if !ok {
		return "", "", false
	}
	server, tool, ok = strings.Cut(rest, "__")
	if !ok || server == "" || tool == "" {
		return "", "", false
	}
	return server, tool, true
}

func (m *Mapper) user(raw json.RawMessage) (bool, error) {
	var msg message
	if json.Unmarshal(raw, &msg) != nil {
		return false, nil
	}
	blocks, ok := msg.blocks()
	if !ok {
		return false, nil
	}
	handled := true
	for _, b := range blocks {
		if b.Type != "tool_result" {
			// The prompt is the daemon's user.message already; other user
			// content (interruption notes, skill text) is for the log.
			handled = false
			continue
		}
		ref, known := m.tools[b.ToolUseID]
		if !known {
			handled = false
			continue
		}
		delete(m.tools, b.ToolUseID)
		ev := map[string]any{"id": m.newID(), "content": resultContent(b.Content), "is_error": b.IsError}
		if ref.mcp {
			ev["type"], ev["mcp_tool_use_id"] = evAgentMCPToolResult, ref.eventID
		} else {
			ev["type"], ev["tool_use_id"] = evAgentToolResult, ref.eventID
		}
		if err := m.emit(ev); err != nil {
			return true, err
		}
	}
	return handled, nil
}

// resultContent converts a tool_result's content (a string or blocks) to
// the event's content blocks: text blocks, and image blocks kept as they
// are (the official content union has both); other blocks become text
// holding their JSON so nothing is lost.
func resultContent(raw json.RawMessage) []any {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []any{map[string]string{"type": "text", "text": s}}
	}
	var blocks []json.RawMessage
	if json.Unmarshal(raw, &blocks) != nil {
		if len(raw) == 0 || string(raw) == "null" {
			return []any{}
		}
		return []any{map[string]string{"type": "text", "text": string(raw)}}
	}
	out := make([]any, 0, len(blocks))
	for _, b := range blocks {
		var head struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		_ = json.Unmarshal(b, &head)
		switch head.Type {
		case "text":
			out = append(out, map[string]string{"type": "text", "text": head.Text})
		case "image":
			out = append(out, b)
		default:
			out = append(out, map[string]string{"type": "text", "text": string(b)})
		}
	}
	return out
}

// Finish ends the turn's mapping: a model call still open (the process
// died or was stopped mid-stream) ends as failed.
func (m *Mapper) Finish() error { return m.closeSpan(true) }

// SessionID is Claude Code's session id, from the first line that had one.
func (m *Mapper) SessionID() string { return m.sessionID }

// ModelCalls counts the model requests seen (span starts).
func (m *Mapper) ModelCalls() int { return m.calls }

// Tokens is the token usage of the turn's model calls so far.
func (m *Mapper) Tokens() harness.Usage { return m.tokens }

// Outcome is how the turn ended, from Claude Code's result line.
type Outcome struct {
	// HasResult is false when Claude Code printed no result (it crashed or
	// was stopped).
	HasResult bool
	// StopReason is the session.status_idle stop reason: end_turn,
	// budget_reached or retries_exhausted (with Failure set).
	StopReason string
	// Failure is the session.error to report, nil on success.
	Failure *Failure
	// CostMicros is the turn's list cost in millionths of a USD, as Claude
	// Code computed it (see Mapper.Outcome).
	CostMicros int64
	// TotalCostMicros is Claude Code's cumulative cost of its session
	// (which it restores on --resume), for the next turn's accounting.
	TotalCostMicros int64
}

// Failure is a session.error's error object.
type Failure struct {
	Type    string // official error type, e.g. model_request_failed_error
	Message string
}

// Outcome interprets the result line. priorTotalMicros is the cumulative
// cost the previous turn's result reported (0 on turn 1).
//
// The turn's cost is the larger of two figures Claude Code reports: the
// growth of its cumulative total_cost_usd since the previous turn (which
// also covers a turn that was interrupted before it could report) and its
// model_usage_since_last_result (this process's own calls), so that a CLI
// that does not restore the total on resume is not undercounted.
func (m *Mapper) Outcome(priorTotalMicros int64) Outcome {
	r := m.result
	if r == nil {
		return Outcome{StopReason: StopRetriesExhausted, TotalCostMicros: priorTotalMicros,
			Failure: &Failure{Type: "unknown_error", Message: "Claude Code ended without reporting a result"}}
	}
	out := Outcome{HasResult: true, StopReason: StopEndTurn, TotalCostMicros: priorTotalMicros}
	var since int64
	for _, mu := range r.SinceLast {
		since += micros(mu.CostUSD)
	}
	if r.TotalCostUSD != nil {
		total := micros(*r.TotalCostUSD)
		out.TotalCostMicros = total
		out.CostMicros = max(total-priorTotalMicros, since)
		if r.SinceLast == nil && total < priorTotalMicros {
			out.CostMicros = total // a fresh total: this turn's own
		}
	} else {
		out.CostMicros = since
	}
	switch {
	case r.Subtype == "error_max_budget_usd":
		out.StopReason = StopBudgetReached
	case r.Subtype == "success" && !r.IsError:
	case r.Subtype == "error_max_turns":
		out.StopReason = StopRetriesExhausted
		out.Failure = &Failure{Type: "tool_use_limit_reached_error",
			Message: fmt.Sprintf("Claude Code stopped after its max_turns limit (%d turns)", r.NumTurns)}
	default:
		out.StopReason = StopRetriesExhausted
		out.Failure = &Failure{Type: errorType(r.APIErrorStatus), Message: r.message()}
	}
	return out
}

func (r *resultLine) message() string {
	parts := append([]string(nil), r.Errors...)
	if r.Result != "" {
		parts = append(parts, r.Result)
	}
	msg := strings.Join(parts, "; ")
	if msg == "" {
		msg = "Claude Code reported " + r.Subtype
	}
	const maxMessage = 2 << 10
	if len(msg) > maxMessage {
		msg = strings.ToValidUTF8(msg[:maxMessage], "") + "…"
	}
	return "Claude Code: " + msg
}

// errorType classifies a failed turn by the Messages API status Claude Code
// last saw.
func errorType(status *int) string {
	if status == nil {
		return "unknown_error"
	}
	switch *status {
	case 429:
		return "model_rate_limited_error"
	case 529:
		return "model_overloaded_error"
	case 402:
		return "billing_error"
	}
	return "model_request_failed_error"
}

// micros converts USD to millionths, rounding up so a budget is never
// under-charged; NaN, infinities and negatives count as 0.
func micros(usd float64) int64 {
	if math.IsNaN(usd) || usd <= 0 {
		return 0
	}
	if usd > 1e9 {
		return 1e15
	}
	return int64(math.Ceil(usd*1e6 - 1e-6))
}
