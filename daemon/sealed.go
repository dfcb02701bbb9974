package daemon

import (
	"iter"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/local"
	"github.com/sandbox0/sandbox0d/store"
)

// Every secret sealed to the daemon's age identity: the deployments'
// repository tokens and the secret_value of vault credentials created
// through the local backend's API (its catalog namespace, which lives next
// to the tokens: the one file on a box, the shared store in a cluster). The startup check (every secret must
// open) and a key rotation (re-seal, then verify) cover both.

// sealedSecrets yields both kinds, read afresh at each iteration.
func sealedSecrets(st *store.Store) (iter.Seq2[crypto.Owner, []byte], error) {
	tokens, err := deployments.SealedSecrets(st)
	if err != nil {
		return nil, err
	}
	ns, err := st.Namespace(store.NamespaceCatalog)
	if err != nil {
		return nil, err
	}
	creds := local.SealedCredentials(ns)
	return func(yield func(crypto.Owner, []byte) bool) {
		for o, b := range tokens {
			if !yield(o, b) {
				return
			}
		}
		for o, b := range creds {
			if !yield(o, b) {
				return
			}
		}
	}, nil
}

// resealAll re-seals the tokens (one transaction), then the credentials
// (another), and hands next to the local backend when there is one. An
// interruption between the two leaves both identities in the file (the
// rotation retires the old one only once every secret opens with the
// new), so nothing becomes unopenable.
func resealAll(svc *deployments.Service, st *store.Store, backend sessions.Backend) func(next *crypto.Keyring) error {
	return func(next *crypto.Keyring) error {
		if err := svc.ResealAll(next); err != nil {
			return err
		}
		ns, err := st.Namespace(store.NamespaceCatalog)
		if err != nil {
			return err
		}
		if _, err := local.ResealCredentials(ns, next); err != nil {
			return err
		}
		if lb, ok := backend.(*local.Backend); ok {
			lb.SetSealer(next)
		}
		return nil
	}
}
