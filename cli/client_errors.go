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
	return fmt.Sprintf("%s (%s)", e.Message, strings.Join(details, ", "))
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
