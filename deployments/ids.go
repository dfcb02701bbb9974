package deployments

import "github.com/sandbox0/sandbox0d/internal/ids"

// NewID returns prefix_ followed by 24 characters of [0-9A-Za-z] (the
// official id alphabet). Ids minted by earlier versions (base64url) stay
// valid: nothing parses an id, they are only looked up.
func NewID(prefix string) string { return ids.New(prefix) }

// ID prefixes.
const (
	PrefixDeployment = "depl"
	PrefixRun        = "drun"
)
