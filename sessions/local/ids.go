package local

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
)

// Id prefixes of the objects this backend mints.
const (
	sessionIDPrefix  = "sesn_"
	eventIDPrefix    = "sevt_"
	resourceIDPrefix = "sesrsc_"
)

// newID returns prefix followed by 128 random bits, base64url without padding.
func newID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// isSessionID reports whether id has the shape of an id minted by newID, so
// a request path can never name a workspace outside WorkspaceDir.
func isSessionID(id string) bool {
	rest, ok := strings.CutPrefix(id, sessionIDPrefix)
	if !ok || len(rest) != 22 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(rest)
	return err == nil
}
