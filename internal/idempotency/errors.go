package idempotency

import (
	"encoding/json"

	"github.com/labstack/echo/v4"

	"github.com/sandbox0/sandbox0d/internal/wire"
)

// writeError writes the error envelope with an explicit x-should-retry:
// wire.WriteError marks every 409 as not retryable, but a key in use by a
// request still running is a 409 a retry resolves.
func writeError(c echo.Context, status int, message string, retry bool) error {
	w := c.Response()
	reqID := w.Header().Get(wire.RequestIDHeader)
	if reqID == "" {
		reqID = wire.NewRequestID()
		w.Header().Set(wire.RequestIDHeader, reqID)
	}
	if retry {
		w.Header().Set("x-should-retry", "true")
		w.Header().Set("retry-after", "1")
	} else {
		w.Header().Set("x-should-retry", "false")
	}
	w.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(wire.ErrorBody{
		Type:      "error",
		Error:     wire.ErrorDetail{Type: wire.KindForStatus(status), Message: message},
		RequestID: reqID,
	})
}
