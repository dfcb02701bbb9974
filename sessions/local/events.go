package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sandbox0/sandbox0d/sessions/local/harness"
	"strings"
	"time"
)

// Event types the backend reads or writes itself.
const (
	eventUserMessage       = "user.message"
	eventUserInterrupt     = "user.interrupt"
	eventSystemMessage     = "system.message"
	eventAgentMessage      = "agent.message"
	eventSessionError      = "session.error"
	eventStatusRescheduled = "session.status_rescheduled"
	eventStatusRunning     = "session.status_running"
	eventStatusIdle        = "session.status_idle"
	eventStatusTerminated  = "session.status_terminated"
	eventSessionDeleted    = "session.deleted"
	eventSessionUpdated    = "session.updated"
)

// session.error error types the backend reports.
const (
	errorTypeUnknown       = "unknown_error"
	errorTypeRepoAuth      = "repository_authentication_error"
	errorTypeRepoNotFound  = "repository_not_found_error"
	errorTypeRepoForbidden = "repository_forbidden_error"
	errorTypeRepoClone     = "repository_clone_error"
	errorTypeRepoCheckout  = "repository_checkout_error"
	// Local sessions never retry by themselves: every error ends the session.
	retryStatusTerminal = "terminal"
	// A turn lost to the daemon stopping: the session lives on, idle.
	retryStatusExhausted = "exhausted"
	stopReasonEndTurn    = "end_turn"
)

const (
	// maxPromptEnvBytes keeps SANDBOX0D_PROMPT under the kernel's limit for
	// one environment string (128 KiB); stdin always has the full text.
	maxPromptEnvBytes = 64 << 10
)

// knownEventTypes are the session event types of the official API.
var knownEventTypes = map[string]bool{
	"user.message": true, "user.interrupt": true, "user.tool_confirmation": true,
	"user.custom_tool_result": true, "user.define_outcome": true, "user.tool_result": true,
	"agent.custom_tool_use": true, "agent.message": true, "agent.thinking": true,
	"agent.mcp_tool_use": true, "agent.mcp_tool_result": true, "agent.tool_use": true,
	"agent.tool_result": true, "agent.thread_message_received": true,
	"agent.thread_message_sent": true, "agent.thread_context_compacted": true,
	"session.error": true, "session.status_rescheduled": true, "session.status_running": true,
	"session.status_idle": true, "session.status_terminated": true, "session.thread_created": true,
	"span.outcome_evaluation_start": true, "span.outcome_evaluation_end": true,
	"span.model_request_start": true, "span.model_request_end": true,
	"span.outcome_evaluation_ongoing": true, "session.deleted": true,
	"session.thread_status_running": true, "session.thread_status_idle": true,
	"session.thread_status_terminated": true, "session.thread_status_rescheduled": true,
	"session.updated": true, "system.message": true, "session.usage": true,
	"workflow_run.created": true, "workflow_run.status_running": true,
	"workflow_run.status_idle": true, "workflow_run.status_ended": true,
	"workflow_run.error": true, "workflow_run.phase_started": true, "workflow_run.phase_ended": true,
}

// newEvent renders an event of the daemon's own with a fresh id.
func newEvent(eventType string, at time.Time, fields map[string]any) []byte {
	obj := make(map[string]any, len(fields)+3)
	for k, v := range fields {
		obj[k] = v
	}
	obj["id"] = newID(eventIDPrefix)
	obj["type"] = eventType
	obj["processed_at"] = at.UTC()
	out, _ := json.Marshal(obj) // strings, times and maps of them: cannot fail
	return out
}

func statusEvent(eventType string, at time.Time) []byte { return newEvent(eventType, at, nil) }

func idleEvent(stopReason string, at time.Time) []byte {
	if stopReason == "" {
		stopReason = stopReasonEndTurn
	}
	// stop_details is required by the official types (refusal details or
	// null); no local stop reason carries details, so it is always null.
	return newEvent(eventStatusIdle, at, map[string]any{
		"stop_reason":  map[string]string{"type": stopReason},
		"stop_details": nil,
	})
}

// textMessageEvent is an agent.message with one text block. It is what
// newEvent renders for it, encoded from a struct: a harness's plain text
// lines all come here, and a map costs several times more to encode.
func textMessageEvent(text string, at time.Time) []byte {
	out, _ := json.Marshal(textMessageJSON{Content: [1]textBlockJSON{{Text: text, Type: "text"}},
		ID: newID(eventIDPrefix), ProcessedAt: at.UTC(), Type: eventAgentMessage})
	return out
}

// textMessageJSON and textBlockJSON have their fields in the order encoding/json
// gives a map's keys, so they encode as newEvent's maps do.
type textMessageJSON struct {
	Content     [1]textBlockJSON `json:"content"`
	ID          string           `json:"id"`
	ProcessedAt time.Time        `json:"processed_at"`
	Type        string           `json:"type"`
}

type textBlockJSON struct {
	Text string `json:"text"`
	Type string `json:"type"`
}

// sessionFailure is why a session ended with a session.error event.
type sessionFailure struct {
	Type          string // session.error error type, e.g. unknown_error
	Message       string
	RepositoryURL string
}

func (f *sessionFailure) Error() string { return f.Message }

func failuref(format string, args ...any) *sessionFailure {
	return &sessionFailure{Type: errorTypeUnknown, Message: fmt.Sprintf(format, args...)}
}

func errorEvent(f *sessionFailure, retry string, at time.Time) []byte {
	body := map[string]any{
		"type":         f.Type,
		"message":      f.Message,
		"retry_status": map[string]string{"type": retry},
	}
	if f.RepositoryURL != "" {
		body["repository_url"] = f.RepositoryURL
	}
	return newEvent(eventSessionError, at, map[string]any{"error": body})
}

// stampEvent gives a caller-supplied JSON object an id and processed_at,
// keeping every other field as sent.
func stampEvent(obj map[string]json.RawMessage, at time.Time) []byte {
	obj["id"], _ = json.Marshal(newID(eventIDPrefix))
	obj["processed_at"], _ = json.Marshal(at.UTC())
	out, _ := json.Marshal(obj) // re-encoding decoded RawMessages cannot fail
	return out
}

// initialEvent validates and stamps one input event (a deployment's
// initial event, or one sent to a session).
func initialEvent(raw json.RawMessage, at time.Time) ([]byte, string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, "", errors.New("is not a JSON object")
	}
	var eventType string
	if err := json.Unmarshal(obj["type"], &eventType); err != nil || eventType == "" {
		return nil, "", errors.New("has no type")
	}
	if eventType != eventUserMessage && eventType != eventSystemMessage {
		return nil, "", fmt.Errorf("has type %q; initial events are user.message or system.message", eventType)
	}
	// Input is held to what harness output is: strict JSON only.
	return harness.CleanJSON(stampEvent(obj, at)), eventType, nil
}

// messageText joins the text blocks of a user.message's content.
func messageText(event []byte) string {
	var msg struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	}
	if json.Unmarshal(event, &msg) != nil {
		return ""
	}
	var parts []string
	for _, block := range msg.Content {
		if block.Type == "text" {
			parts = append(parts, block.Text)
		}
	}
	return strings.Join(parts, "\n")
}
