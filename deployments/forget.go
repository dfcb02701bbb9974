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
	err := st.Update(func(tx *store.Tx) error {
		var changed []*Deployment
		if err := tx.ForEachDeployment(func(id string, doc []byte) error {
			d, err := decodeDeployment(doc)
			if err != nil {
				return err
			}
			touched := false
			for i := range d.Resources {
				r := &d.Resources[i]
				if len(r.SealedToken) == 0 || canOpen(r.SealedToken) {
					continue
				}
				forgotten = append(forgotten, ForgottenToken{DeploymentID: id, DeploymentName: d.Name, Position: i,
					ResourceType: r.Type, URL: r.URL})
				r.SealedToken = nil
				touched = true
			}
			if touched {
				changed = append(changed, d)
			}
			return nil
		}); err != nil {
			return err
		}
		if dryRun {
			return nil
		}
		for _, d := range changed {
			if err := putDeployment(tx, d); err != nil {
				return err
			}
		}
		return nil
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
