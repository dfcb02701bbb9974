package deployments

import (
	"errors"
	"fmt"
)

// Kind classifies a service error for the API layer.
type Kind int

const (
	KindInvalid     Kind = iota + 1 // 400
	KindNotFound                    // 404
	KindConflict                    // 409
	KindUnavailable                 // 503
	KindBadGateway                  // 502: the backend refused the daemon; not worth retrying
)

// Error is a service error that says what was wrong and where. Field is the
// wire path of the offending input ("schedule.expression", "resources[2].url")
// and is empty when the error is not about one field.
type Error struct {
	Kind    Kind
	Field   string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

func invalid(field, format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *Error {
	return &Error{Kind: KindNotFound, Message: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) *Error {
	return &Error{Kind: KindConflict, Message: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of a service error, or 0 for internal errors.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}
