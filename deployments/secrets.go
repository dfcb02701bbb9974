package deployments

import (
	"fmt"
	"iter"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/store"
)

// SealedSecrets yields every sealed token in the database with its owner,
// from a fresh read transaction each time it is iterated.
func SealedSecrets(st *store.Store) iter.Seq2[crypto.Owner, []byte] {
	return func(yield func(crypto.Owner, []byte) bool) {
		type item struct {
			owner crypto.Owner
			blob  []byte
		}
		var items []item
		_ = st.View(func(tx *store.Tx) error {
			return tx.ForEachDeployment(func(id string, doc []byte) error {
				d, err := decodeDeployment(doc)
				if err != nil {
					return nil
				}
				for i, r := range d.Resources {
					if len(r.SealedToken) > 0 {
						items = append(items, item{crypto.Owner{DeploymentID: id, Position: i}, r.SealedToken})
					}
				}
				return nil
			})
		})
		for _, it := range items {
			if !yield(it.owner, it.blob) {
				return
			}
		}
	}
}

// ResealAll re-seals every stored token to next's primary identity in one
// transaction, then makes next the service's keyring. Either every secret
// moves or none does.
func (s *Service) ResealAll(next *crypto.Keyring) error {
	err := s.store.Update(func(tx *store.Tx) error {
		var changed []*Deployment
		if err := tx.ForEachDeployment(func(id string, doc []byte) error {
			d, err := decodeDeployment(doc)
			if err != nil {
				return err
			}
			touched := false
			for i := range d.Resources {
				if len(d.Resources[i].SealedToken) == 0 {
					continue
				}
				blob, err := next.Reseal(crypto.Owner{DeploymentID: id, Position: i}, d.Resources[i].SealedToken)
				if err != nil {
					return fmt.Errorf("re-seal %s/resources/%d: %w", id, i, err)
				}
				d.Resources[i].SealedToken = blob
				touched = true
			}
			if touched {
				changed = append(changed, d)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, d := range changed {
			if err := putDeployment(tx, d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.SetSealer(next)
	return nil
}
