package console

import (
	"errors"
	"net/http"
	"syscall"

	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/internal/diskspace"
)

// statusOf and errorMessage say what the API says for a service error (see
// httpapi's classify): the same status and the same message, so an
// operator refused on a page reads what a client would.
func statusOf(err error) int {
	var de *deployments.Error
	switch {
	case errors.As(err, new(*diskspace.LowError)), errors.Is(err, syscall.ENOSPC):
		return http.StatusInsufficientStorage
	case errors.As(err, &de):
		switch de.Kind {
		case deployments.KindInvalid:
			return http.StatusBadRequest
		case deployments.KindNotFound:
			return http.StatusNotFound
		case deployments.KindConflict:
			return http.StatusConflict
		case deployments.KindPrecondition:
			return http.StatusPreconditionFailed
		case deployments.KindUnavailable:
			return http.StatusServiceUnavailable
		case deployments.KindBadGateway:
			return http.StatusBadGateway
		}
	}
	return http.StatusInternalServerError
}

func errorMessage(err error) string {
	var de *deployments.Error
	switch {
	case errors.As(err, new(*diskspace.LowError)):
		return err.Error()
	case errors.Is(err, syscall.ENOSPC):
		return "the data directory's file system is full (no space left on device): nothing was written; free space there (disk.min_free keeps a reserve) and retry"
	case errors.As(err, &de):
		return de.Error()
	}
	return "internal error; see the daemon log"
}
