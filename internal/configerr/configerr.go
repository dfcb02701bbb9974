// Package configerr is the one configuration error type of sandbox0d: the
// daemon's keys, the upstream backend's and the local backend's all report a
// bad value as an *Error naming its key (and the file, when the problem is
// in the file). It must not know any particular key.
package configerr

import "fmt"

// Error is one invalid configuration value.
type Error struct {
	// File is the config file the key was read from; "" when the problem is
	// not about the file (a value from a flag, the environment or a default).
	File string
	// Key is the dotted config key, with list indexes: local.agents[0].command.
	Key     string
	Problem string
	Err     error
}

func (e *Error) Error() string {
	s := e.Key + ": " + e.Problem
	if e.Err != nil {
		s += fmt.Sprintf(": %v", e.Err)
	}
	if e.File != "" {
		s = e.File + ": " + s
	}
	return "config " + s
}

func (e *Error) Unwrap() error { return e.Err }
