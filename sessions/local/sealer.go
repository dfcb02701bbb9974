package local

import (
	"errors"
	"fmt"
	"iter"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/store"
)

// Sealer seals and opens the secret_value of vault credentials created
// through the API, with the daemon's age identity (the *crypto.Keyring
// that seals repository tokens). Each secret is bound to its credential id
// (Owner{DeploymentID: credential id, Position: 0}), so a sealed value
// copied onto another credential does not open.
type Sealer interface {
	Seal(owner crypto.Owner, plaintext []byte) ([]byte, error)
	Open(owner crypto.Owner, sealed []byte) ([]byte, error)
}

// errNoSealer is why a credential cannot be written or read without one.
var errNoSealer = errors.New("this daemon has no age identity to seal vault credentials with")

func credentialOwner(id string) crypto.Owner { return crypto.Owner{DeploymentID: id} }

// SetSealer swaps the keyring (after a key rotation re-sealed every
// credential with ResealCredentials).
func (b *Backend) SetSealer(s Sealer) {
	b.sealerMu.Lock()
	defer b.sealerMu.Unlock()
	b.sealer = s
}

func (b *Backend) currentSealer() Sealer {
	b.sealerMu.RLock()
	defer b.sealerMu.RUnlock()
	return b.sealer
}

func (b *Backend) seal(credentialID, secret string) ([]byte, error) {
	s := b.currentSealer()
	if s == nil {
		return nil, errNoSealer
	}
	return s.Seal(credentialOwner(credentialID), []byte(secret))
}

func (b *Backend) open(c apiCredential) (string, error) {
	s := b.currentSealer()
	if s == nil {
		return "", errNoSealer
	}
	plain, err := s.Open(credentialOwner(c.ID), c.Sealed)
	if err != nil {
		return "", fmt.Errorf("vault %s credential %s: %w", c.VaultID, c.ID, err)
	}
	defer clear(plain)
	return string(plain), nil
}

// SealedCredentials yields every sealed credential secret of the catalog
// namespace ns (store.NamespaceCatalog) with its owner, read afresh at each
// iteration: the daemon adds them to the deployments' tokens for the
// startup check (every secret must open) and for a key rotation's
// verification.
func SealedCredentials(ns *store.Namespace) iter.Seq2[crypto.Owner, []byte] {
	return func(yield func(crypto.Owner, []byte) bool) {
		creds, err := listAll[apiCredential](catalogStore{ns}, bucketAPICredentials, nil)
		if err != nil {
			// An unreadable record yields an owner with an empty blob:
			// the caller's "can the identity open it" check then fails
			// loudly instead of passing on nothing.
			yield(crypto.Owner{DeploymentID: "api_credentials"}, nil)
			return
		}
		for _, c := range creds {
			if !yield(credentialOwner(c.ID), c.Sealed) {
				return
			}
		}
	}
}

// Resealer is what a rotation's next keyring offers.
type Resealer interface {
	Reseal(owner crypto.Owner, sealed []byte) ([]byte, error)
}

// ResealCredentials re-seals every credential secret of the catalog
// namespace ns to next's primary identity in one transaction, and returns
// how many it re-sealed. Either every credential moves or none does.
func ResealCredentials(ns *store.Namespace, next Resealer) (int, error) {
	n := 0
	err := ns.Update(func(tx *store.NamespaceTx) error {
		creds, err := scanRecords[apiCredential](tx, bucketAPICredentials, nil)
		if err != nil {
			return err
		}
		for _, c := range creds {
			blob, err := next.Reseal(credentialOwner(c.ID), c.Sealed)
			if err != nil {
				return fmt.Errorf("re-seal vault %s credential %s: %w", c.VaultID, c.ID, err)
			}
			c.Sealed = blob
			if err := putRecord(tx, bucketAPICredentials, credentialKey(c.VaultID, c.ID), c); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// ForgottenCredential is a vault credential whose sealed secret no
// identity opens.
type ForgottenCredential struct {
	VaultID, ID, SecretName string
}

// ForgetUnopenableCredentials deletes, in one transaction, every vault
// credential of the catalog namespace ns whose secret canOpen refuses (a
// restored backup sealed with an identity that is gone): without it the
// daemon refuses to start, and a credential without its secret is nothing
// to keep. The vaults stay; create the credentials again through the API.
// With dryRun nothing is written.
func ForgetUnopenableCredentials(ns *store.Namespace, canOpen func(sealed []byte) bool, dryRun bool) ([]ForgottenCredential, error) {
	var out []ForgottenCredential
	err := ns.Update(func(tx *store.NamespaceTx) error {
		creds, err := scanRecords[apiCredential](tx, bucketAPICredentials, nil)
		if err != nil {
			return err
		}
		for _, c := range creds {
			if canOpen(c.Sealed) {
				continue
			}
			out = append(out, ForgottenCredential{VaultID: c.VaultID, ID: c.ID, SecretName: c.SecretName})
			if !dryRun {
				if err := tx.Bucket(bucketAPICredentials).Delete(credentialKey(c.VaultID, c.ID)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return out, err
}
