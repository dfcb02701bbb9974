package deployments

import (
	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/store"
)

// ForgottenToken is a resource whose sealed token no identity opens.
type ForgottenToken struct {
	DeploymentID   string
	DeploymentName string
	Position       int
	ResourceType   string
	URL            string
}

// ForgetUnopenableTokens drops, in one transaction, every sealed token that
// canOpen refuses, and returns the resources it dropped them from. The
// deployments and their resources stay; only the token goes, so a later run
// clones without one (or fails visibly) instead of the daemon refusing to
// start. With dryRun nothing is written.
func ForgetUnopenableTokens(st *store.Store, canOpen func(sealed []byte) bool, dryRun bool) ([]ForgottenToken, error) {
	var forgotten []ForgottenToken
	err := eachSealedToken(st, dryRun, func(d *Deployment, i int) (bool, error) {
		r := &d.Resources[i]
		if canOpen(r.SealedToken) {
			return false, nil
		}
		forgotten = append(forgotten, ForgottenToken{DeploymentID: d.ID, DeploymentName: d.Name, Position: i,
			ResourceType: r.Type, URL: r.URL})
		r.SealedToken = nil
		return true, nil
	})
	return forgotten, err
}

// OpenableBy is the canOpen of ForgetUnopenableTokens for a set of
// keyrings: a token stays if any identity in any of them opens it.
func OpenableBy(keyrings ...*crypto.Keyring) func([]byte) bool {
	return func(sealed []byte) bool {
		for _, k := range keyrings {
			if k != nil && k.CanOpen(sealed) {
				return true
			}
		}
		return false
	}
}
