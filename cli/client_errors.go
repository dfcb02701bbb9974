package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// APIError is an error answer from the daemon, decoded from the error
// envelope {"type":"error","error":{"type","message"},"request_id"}.
type APIError struct {
	Status    int
	Type      string
	Message   string
	RequestID string
	// Hint is the way out the CLI adds (which variable to set), after the
	// daemon's message.
	Hint string
}

// Error puts the API's message first: it is what a person needs to read.
func (e *APIError) Error() string {
	details := []string{}
	if e.Type != "" {
		details = append(details, e.Type)
	}
	details = append(details, fmt.Sprintf("HTTP %d", e.Status))
	if e.RequestID != "" {
		details = append(details, "request "+e.RequestID)
	}
	msg := fmt.Sprintf("%s (%s)", e.Message, strings.Join(details, ", "))
	if e.Hint != "" {
		msg += "; " + e.Hint
	}
	return msg
}

// authHint is the way out of a 401 on TCP: the CLI sends the key from
// SANDBOX0D_API_KEY, so that is the name the person needs.
func authHint(keySent bool) string {
	if !keySent {
		return envAPIKey + " is not set: export " + envAPIKey + "=<key> (create one with `sandbox0d apikeys create --name NAME` on the daemon's socket)"
	}
	return "the key in " + envAPIKey + " was refused: check it, or create a new one with `sandbox0d apikeys create --name NAME` on the daemon's socket"
}

// maxErrorBodyBytes bounds how much of an error answer is read.
const maxErrorBodyBytes = 64 << 10

// decodeAPIError turns a non-2xx response into an *APIError. A body that is
// not the envelope (a proxy's HTML page, say) is quoted, shortened, so the
// person still sees what came back.
func decodeAPIError(resp *http.Response) *APIError {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
	apiErr := &APIError{Status: resp.StatusCode, RequestID: resp.Header.Get("request-id")}
	var envelope struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
		RequestID string `json:"request_id"`
	}
	if json.Unmarshal(data, &envelope) == nil && envelope.Type == "error" && envelope.Error.Message != "" {
		apiErr.Type = envelope.Error.Type
		apiErr.Message = envelope.Error.Message
		if envelope.RequestID != "" {
			apiErr.RequestID = envelope.RequestID
		}
		return apiErr
	}
	body := strings.TrimSpace(string(data))
	if !utf8.ValidString(body) {
		body = ""
	}
	if body == "" {
		apiErr.Message = "the daemon answered " + resp.Status + " with no error message"
	} else {
		apiErr.Message = "the daemon answered " + resp.Status + ": " + truncate(oneLine(body), 200)
	}
	return apiErr
}
