// Package wire holds the few wire-format pieces that every HTTP-facing part of
// sandbox0d must render identically: the error envelope and request ids. It
// must not know about deployments, storage or routing.
package wire

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
)

// Error kinds of the error envelope, with their HTTP status.
const (
	InvalidRequest = "invalid_request_error" // 400
	Authentication = "authentication_error"  // 401
	Permission     = "permission_error"      // 403
	NotFound       = "not_found_error"       // 404
	Conflict       = "conflict_error"        // 409
	TooLarge       = "request_too_large"     // 413
	RateLimit      = "rate_limit_error"      // 429
	API            = "api_error"             // 500
	Overloaded     = "overloaded_error"      // 503
)

// KindForStatus maps an HTTP status to the envelope's error type.
func KindForStatus(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return Authentication
	case http.StatusForbidden:
		return Permission
	case http.StatusNotFound:
		return NotFound
	case http.StatusConflict:
		return Conflict
	case http.StatusRequestEntityTooLarge:
		return TooLarge
	case http.StatusTooManyRequests:
		return RateLimit
	case http.StatusServiceUnavailable:
		return Overloaded
	}
	if status >= 500 {
		return API
	}
	return InvalidRequest
}

// ErrorBody is the error envelope.
type ErrorBody struct {
	Type      string      `json:"type"`
	Error     ErrorDetail `json:"error"`
	RequestID string      `json:"request_id,omitempty"`
}

// ErrorDetail is the inner error object of the envelope.
type ErrorDetail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// RequestIDHeader is set on every response.
const RequestIDHeader = "request-id"

// NewRequestID returns a fresh "req_" id followed by 24 characters of
// [0-9A-Za-z], the official id alphabet (earlier versions used base64url,
// whose "-" and "_" break a double-click selection). Every response carries
// one, so it is built in one allocation from the runtime's ChaCha8 generator
// (unpredictable, per-thread, no system call); an id only needs to be unique,
// not secret. Each 64-bit draw gives 8 characters: 62^8 divides 2^64 with a
// remainder so small (bias < 2^-16 per character) that uniqueness does not
// suffer, and 24 characters carry about 142 bits.
func NewRequestID() string {
	var out [4 + 24]byte
	copy(out[:], "req_")
	for i := 4; i < len(out); i += 8 {
		v := rand.Uint64()
		for j := 0; j < 8; j++ {
			out[i+j] = idAlphabet[v%62]
			v /= 62
		}
	}
	return string(out[:])
}

const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// WriteError writes the error envelope. It reuses the request-id already set
// on the response (the API middleware sets one on every request), and marks
// 409s as not retryable so SDK clients do not hammer a conflict.
func WriteError(w http.ResponseWriter, status int, message string) {
	reqID := w.Header().Get(RequestIDHeader)
	if reqID == "" {
		reqID = NewRequestID()
		w.Header().Set(RequestIDHeader, reqID)
	}
	// A conflict does not go away by itself, and a full disk not within an
	// SDK's retry window.
	if status == http.StatusConflict || status == http.StatusInsufficientStorage {
		w.Header().Set("x-should-retry", "false")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	kind := KindForStatus(status)
	_ = json.NewEncoder(w).Encode(ErrorBody{
		Type:      "error",
		Error:     ErrorDetail{Type: kind, Message: message},
		RequestID: reqID,
	})
}
