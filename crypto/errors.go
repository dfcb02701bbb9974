package crypto

import (
	"errors"
	"fmt"
)

// ErrNoIdentity means no identity in the keyring can open a sealed secret: it
// was sealed to an identity that is not in the identity file (a wrong or
// replaced file, or an identity retired before everything was re-sealed).
var ErrNoIdentity = errors.New("no identity in the keyring can open this sealed secret")

// ErrMalformedSealed means the bytes are not a sealed secret this package
// produced, or they were truncated or tampered with. The message never quotes
// the input.
var ErrMalformedSealed = errors.New("sealed secret is corrupted or not a sandbox0d sealed secret")

// OwnerMismatchError is returned by Open when the secret was sealed for a
// different owner, i.e. the ciphertext was copied from another deployment or
// resource position. Both owners are identifiers, never secret.
type OwnerMismatchError struct {
	Expected Owner // the owner the caller asked to open
	SealedTo Owner // the owner recorded inside the sealed envelope
}

func (e *OwnerMismatchError) Error() string {
	return fmt.Sprintf("sealed secret for %s belongs to %s: a ciphertext cannot be moved between deployments or resources; set the secret again",
		e.Expected, e.SealedTo)
}
