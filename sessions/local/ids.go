package local

import (
	"encoding/base64"
	"strings"

	"github.com/sandbox0/sandbox0d/internal/ids"
)

// Id prefixes of the objects this backend mints.
const (
	sessionIDPrefix  = "sesn_"
	eventIDPrefix    = "sevt_"
	resourceIDPrefix = "sesrsc_"
)

// newID returns prefix (which ends in "_") followed by 24 characters of
// [0-9A-Za-z], the official id alphabet.
func newID(prefix string) string {
	return ids.New(strings.TrimSuffix(prefix, "_"))
}

// isSessionID reports whether id has the shape of an id minted by newID, or
// by earlier versions (22 characters of base64url), so a request path can
// never name a workspace outside WorkspaceDir.
func isSessionID(id string) bool {
	if ids.IsNew(strings.TrimSuffix(sessionIDPrefix, "_"), id) {
		return true
	}
	rest, ok := strings.CutPrefix(id, sessionIDPrefix)
	if !ok || len(rest) != 22 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(rest)
	return err == nil
}
