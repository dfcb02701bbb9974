package console

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
)

// eventView is one transcript entry. The same template renders it on the
// page and in the live stream, so a live event looks like a reloaded one.
type eventView struct {
	ID      string
	Type    string
	Kind    string // user, agent, thinking, tool, result, error, status, other
	Label   string
	Text    string
	Detail  string // pretty JSON: a tool's input, a result, an unknown event
	Fold    bool   // long: shown folded
	IsError bool
	At      *timeView
}

// foldOver is the size past which text or detail is folded.
const (
	foldBytes = 600
	foldLines = 12
)

func long(s string) bool { return len(s) > foldBytes || strings.Count(s, "\n") >= foldLines }

type rawEvent struct {
	ID          string           `json:"id"`
	Type        string           `json:"type"`
	ProcessedAt *time.Time       `json:"processed_at"`
	Content     json.RawMessage  `json:"content"`
	Name        string           `json:"name"`
	Input       json.RawMessage  `json:"input"`
	IsError     *bool            `json:"is_error"`
	Thinking    string           `json:"thinking"`
	ToolUseID   string           `json:"tool_use_id"`
	Error       *json.RawMessage `json:"error"`
	StopReason  *json.RawMessage `json:"stop_reason"`
	ModelUsage  *json.RawMessage `json:"model_usage"`
}

func newEventView(raw json.RawMessage, now time.Time) eventView {
	var e rawEvent
	_ = json.Unmarshal(raw, &e)
	v := eventView{ID: e.ID, Type: e.Type, Kind: "other", Label: e.Type}
	if e.ProcessedAt != nil {
		v.At = newTime(*e.ProcessedAt, "UTC", now)
	}
	switch e.Type {
	case "user.message":
		v.Kind, v.Label, v.Text = "user", "User", contentText(e.Content)
	case "system.message":
		v.Kind, v.Label, v.Text = "user", "System", contentText(e.Content)
	case "user.interrupt":
		v.Kind, v.Label, v.Text = "status", "Interrupt", "the operator interrupted the turn"
	case "agent.message":
		v.Kind, v.Label, v.Text = "agent", "Agent", contentText(e.Content)
	case "agent.thinking":
		v.Kind, v.Label, v.Text = "thinking", "Thinking", e.Thinking
		if v.Text == "" {
			v.Text = "(the agent thought; the text is not part of the event)"
		}
	case "agent.tool_use", "agent.mcp_tool_use", "agent.custom_tool_use":
		v.Kind, v.Label, v.Detail = "tool", "Tool use: "+e.Name, pretty(e.Input)
	case "agent.tool_result", "agent.mcp_tool_result", "user.tool_result", "user.custom_tool_result":
		v.Kind, v.Label = "result", "Tool result"
		v.Text = contentText(e.Content)
		if v.Text == "" && len(e.Content) > 0 && string(e.Content) != "null" {
			v.Detail = pretty(e.Content)
		}
		if e.IsError != nil && *e.IsError {
			v.IsError, v.Label = true, "Tool result (error)"
		}
	case "session.error", "workflow_run.error":
		v.Kind, v.Label, v.IsError = "error", "Error", true
		var er struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		}
		if e.Error != nil && json.Unmarshal(*e.Error, &er) == nil {
			v.Text = strings.TrimSpace(er.Type + ": " + er.Message)
		}
	case "session.status_running":
		v.Kind, v.Label, v.Text = "status", "Running", "the session started a turn"
	case "session.status_idle":
		v.Kind, v.Label, v.Text = "status", "Idle", "the turn ended"
		var sr struct {
			Type string `json:"type"`
		}
		if e.StopReason != nil && json.Unmarshal(*e.StopReason, &sr) == nil && sr.Type != "" {
			v.Text += " (stop reason: " + sr.Type + ")"
		}
	case "session.status_terminated":
		v.Kind, v.Label, v.Text = "status", "Terminated", "the session ended for good"
	case "session.status_rescheduled":
		v.Kind, v.Label, v.Text = "status", "Rescheduled", "the session is being restarted"
	case "session.deleted":
		v.Kind, v.Label, v.Text = "status", "Deleted", "the session was deleted"
	case "span.model_request_end":
		v.Kind, v.Label = "status", "Model request"
		if e.ModelUsage != nil {
			v.Detail = pretty(*e.ModelUsage)
		}
	default:
		v.Detail = pretty(raw)
	}
	v.Fold = long(v.Text) || long(v.Detail)
	return v
}

// contentText joins the text blocks of a content array (or a plain string).
func contentText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var blocks []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &blocks) != nil {
		return ""
	}
	var parts []string
	for _, b := range blocks {
		if b.Type == "text" {
			parts = append(parts, b.Text)
		} else if b.Type != "" {
			parts = append(parts, "["+b.Type+"]")
		}
	}
	return strings.Join(parts, "\n")
}

func pretty(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") != nil {
		return string(raw)
	}
	return buf.String()
}
