package deployments

import (
	"fmt"
	"iter"
	"sync"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/store"
)

// SealedSecrets reads every sealed token in the database with its owner. A
// read or decode failure is an error (it used to be swallowed, and startup
// then saw "no secrets" and accepted any identity). The iterator reads
// afresh each time it is iterated (a rotation checks the re-sealed state);
// should a later read fail, it yields the last good read, whose old blobs
// make such a check fail loudly instead of passing on nothing.
func SealedSecrets(st *store.Store) (iter.Seq2[crypto.Owner, []byte], error) {
	type item struct {
		owner crypto.Owner
		blob  []byte
	}
	read := func() ([]item, error) {
		var items []item
		err := st.View(func(tx *store.Tx) error {
			return tx.ForEachDeployment(func(id string, doc []byte) error {
				d, err := decodeDeployment(doc)
				if err != nil {
					return fmt.Errorf("deployment %s: %w", id, err)
				}
				for i, r := range d.Resources {
					if len(r.SealedToken) > 0 {
						items = append(items, item{crypto.Owner{DeploymentID: id, Position: i}, r.SealedToken})
					}
				}
				return nil
			})
		})
		if err != nil {
			return nil, fmt.Errorf("read sealed secrets: %w", err)
		}
		return items, nil
	}
	last, err := read()
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	return func(yield func(crypto.Owner, []byte) bool) {
		items, err := read()
		mu.Lock()
		if err == nil {
			last = items
		} else {
			items = last
		}
		mu.Unlock()
		for _, it := range items {
			if !yield(it.owner, it.blob) {
				return
			}
		}
	}, nil
}

// ResealAll re-seals every stored token to next's primary identity in one
// transaction, then makes next the service's keyring. Either every secret
// moves or none does.
func (s *Service) ResealAll(next *crypto.Keyring) error {
	err := eachSealedToken(s.store, false, func(d *Deployment, i int) (bool, error) {
		blob, err := next.Reseal(crypto.Owner{DeploymentID: d.ID, Position: i}, d.Resources[i].SealedToken)
		if err != nil {
			return false, fmt.Errorf("re-seal %s/resources/%d: %w", d.ID, i, err)
		}
		d.Resources[i].SealedToken = blob
		return true, nil
	}, func(tx *store.Tx) error {
		// In the same transaction: from its commit on, a node of the
		// cluster still on the old identity refuses to seal (store/seal.go).
		return tx.SetSealRecipient(next.PrimaryRecipient())
	})
	if err != nil {
		return err
	}
	s.SetSealer(next)
	return nil
}

// eachSealedToken calls change, in one write transaction, for every resource
// that holds a sealed token; change edits d.Resources[i] and says whether it
// did. The deployments it changed are written back unless dryRun. An error
// from change rolls the whole transaction back.
func eachSealedToken(st *store.Store, dryRun bool, change func(d *Deployment, i int) (bool, error), also ...func(tx *store.Tx) error) error {
	return st.Update(func(tx *store.Tx) error {
		var changed []*Deployment
		if err := tx.ForEachDeployment(func(_ string, doc []byte) error {
			d, err := decodeDeployment(doc)
			if err != nil {
				return err
			}
			touched := false
			for i := range d.Resources {
				if len(d.Resources[i].SealedToken) == 0 {
					continue
				}
				did, err := change(d, i)
				if err != nil {
					return err
				}
				touched = touched || did
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
		for _, fn := range also {
			if err := fn(tx); err != nil {
				return err
			}
		}
		return nil
	})
}
