//go:build !linux

package sandbox

import "errors"

// Bubblewrap is Linux only.
type Bubblewrap struct{ None }

func newBubblewrap(Config) (*Bubblewrap, error) {
	return nil, errors.New("bubblewrap needs Linux")
}
