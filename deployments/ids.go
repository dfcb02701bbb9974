package deployments

import (
	"crypto/rand"
	"encoding/base64"
)

// NewID returns prefix_ followed by 128 random bits, URL-safe.
func NewID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// ID prefixes.
const (
	PrefixDeployment = "depl"
	PrefixRun        = "drun"
)
