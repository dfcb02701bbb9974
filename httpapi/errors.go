package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"syscall"

	"github.com/labstack/echo/v4"

	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/internal/diskspace"
	"github.com/sandbox0/sandbox0d/internal/wire"
)

// statusError is an error with the HTTP status it should be answered with.
type statusError struct {
	status  int
	message string
}

func (e *statusError) Error() string { return e.message }

func apiError(status int, format string, args ...any) error {
	return &statusError{status: status, message: fmt.Sprintf(format, args...)}
}

// handleError renders every error as the envelope; this is the one place
// errors become HTTP.
func (a *API) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, message := a.classify(err, c)
	wire.WriteError(c.Response(), status, message)
}

func (a *API) classify(err error, c echo.Context) (int, string) {
	var se *statusError
	var de *deployments.Error
	var he *echo.HTTPError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &se):
		return se.status, se.message
	case errors.As(err, new(*diskspace.LowError)):
		return http.StatusInsufficientStorage, err.Error()
	case errors.Is(err, syscall.ENOSPC):
		a.log.Error("request failed: the disk is full", "method", c.Request().Method, "path", c.Path(), "error", err.Error())
		return http.StatusInsufficientStorage, DiskFullMessage
	case errors.As(err, new(interface{ StoreUnavailable() bool })):
		// The store (etcd) did not answer in time: retryable, and said so.
		return http.StatusServiceUnavailable, err.Error()
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", tooBig.Limit)
	case errors.As(err, &de):
		switch de.Kind {
		case deployments.KindInvalid:
			return http.StatusBadRequest, de.Error()
		case deployments.KindNotFound:
			return http.StatusNotFound, de.Error()
		case deployments.KindConflict:
			return http.StatusConflict, de.Error()
		case deployments.KindPrecondition:
			return http.StatusPreconditionFailed, de.Error()
		case deployments.KindUnavailable:
			return http.StatusServiceUnavailable, de.Error()
		case deployments.KindBadGateway:
			// A permanent problem: tell the SDKs not to retry it.
			c.Response().Header().Set("x-should-retry", "false")
			return http.StatusBadGateway, de.Error()
		}
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusNotFound:
			return http.StatusNotFound, fmt.Sprintf("no route for %s %s", c.Request().Method, c.Request().URL.Path)
		case http.StatusMethodNotAllowed:
			return http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s", c.Request().Method, c.Request().URL.Path)
		case http.StatusRequestEntityTooLarge:
			return he.Code, fmt.Sprintf("request body exceeds %d bytes", a.limit)
		}
		if he.Code >= 400 && he.Code < 500 {
			return he.Code, fmt.Sprint(he.Message)
		}
	}
	a.log.Error("request failed", "method", c.Request().Method, "path", c.Path(),
		"request_id", c.Response().Header().Get(wire.RequestIDHeader), "error", err.Error())
	return http.StatusInternalServerError, "internal error; see the daemon log for request " + c.Response().Header().Get(wire.RequestIDHeader)
}

// DiskFullMessage answers a write that failed for lack of space (HTTP 507).
const DiskFullMessage = "the data directory's file system is full (no space left on device): nothing was written; free space there (disk.min_free keeps a reserve) and retry"
