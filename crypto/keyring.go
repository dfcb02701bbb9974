package crypto

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	"filippo.io/age"
)

// ageMagic is the first line of every age v1 file, binary or armored-decoded.
const ageMagic = "age-encryption.org/v1\n"

// Keyring holds one or more age X25519 identities. The last identity is the
// primary: Seal encrypts to it. Open tries every identity, which is what keeps
// secrets openable while a rotation is in progress. A Keyring is immutable and
// safe for concurrent use; rotation produces a new one.
type Keyring struct {
	path       string // identity file it was loaded from; "" when generated in memory
	identities []*age.X25519Identity
	decryptors []age.Identity // primary first, then newest to oldest, for age.Decrypt
}

// newKeyring wraps identities (oldest first, primary last).
func newKeyring(path string, identities []*age.X25519Identity) (*Keyring, error) {
	if len(identities) == 0 {
		return nil, errors.New("keyring: no identities")
	}
	// age tries identities in order and each miss costs a scalar
	// multiplication; most secrets are sealed to the primary.
	decryptors := make([]age.Identity, 0, len(identities))
	for _, id := range slices.Backward(identities) {
		decryptors = append(decryptors, id)
	}
	return &Keyring{path: path, identities: identities, decryptors: decryptors}, nil
}

// GenerateKeyring returns an in-memory keyring with one fresh identity. It is
// meant for tests of packages that store sealed secrets.
func GenerateKeyring() (*Keyring, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, fmt.Errorf("generate age identity: %w", err)
	}
	return newKeyring("", []*age.X25519Identity{id})
}

// Len is the number of identities; more than one means a rotation is in
// progress (or was interrupted) or the operator kept old identities on purpose.
func (k *Keyring) Len() int { return len(k.identities) }

// Path is the identity file the keyring was loaded from, or "".
func (k *Keyring) Path() string { return k.path }

// PrimaryRecipient is the public key ("age1...") new secrets are sealed to.
// It is safe to log.
func (k *Keyring) PrimaryRecipient() string {
	return k.primary().Recipient().String()
}

// Recipients lists the public keys of every identity, oldest first.
func (k *Keyring) Recipients() []string {
	out := make([]string, len(k.identities))
	for i, id := range k.identities {
		out[i] = id.Recipient().String()
	}
	return out
}

// PrimaryOnly returns a keyring holding only the primary identity. Before
// retiring old identities, check that it opens every stored secret.
func (k *Keyring) PrimaryOnly() *Keyring {
	only, _ := newKeyring(k.path, []*age.X25519Identity{k.primary()})
	return only
}

func (k *Keyring) primary() *age.X25519Identity { return k.identities[len(k.identities)-1] }

// IsSealed reports whether b looks like a sealed secret (a binary age file).
// It does not authenticate anything; it lets the store tell sealed values from
// plaintext that must never be there.
func IsSealed(b []byte) bool { return bytes.HasPrefix(b, []byte(ageMagic)) }

// Seal encrypts plaintext to the primary recipient inside an envelope bound to
// owner.
func (k *Keyring) Seal(owner Owner, plaintext []byte) ([]byte, error) {
	if err := owner.Validate(); err != nil {
		return nil, fmt.Errorf("seal secret: %w", err)
	}
	if len(plaintext) > MaxSecretSize {
		return nil, fmt.Errorf("seal secret for %s: %d bytes exceeds the %d byte limit", owner, len(plaintext), MaxSecretSize)
	}
	var out bytes.Buffer
	out.Grow(256 + len(plaintext))
	w, err := age.Encrypt(&out, k.primary().Recipient())
	if err != nil {
		return nil, fmt.Errorf("seal secret for %s: %w", owner, err)
	}
	if _, err := w.Write(encodeEnvelope(owner, plaintext)); err != nil {
		return nil, fmt.Errorf("seal secret for %s: %w", owner, err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("seal secret for %s: %w", owner, err)
	}
	return out.Bytes(), nil
}

// Open decrypts a sealed secret and checks that it was sealed for owner. It
// fails with ErrNoIdentity when no identity in the keyring opens it,
// *OwnerMismatchError when it belongs to someone else, and ErrMalformedSealed
// when the bytes are not an intact sealed secret.
func (k *Keyring) Open(owner Owner, sealed []byte) ([]byte, error) {
	sealedTo, plaintext, err := k.decrypt(sealed)
	if err != nil {
		return nil, fmt.Errorf("open secret for %s: %w", owner, err)
	}
	if sealedTo != owner {
		return nil, &OwnerMismatchError{Expected: owner, SealedTo: sealedTo}
	}
	return plaintext, nil
}

// Reseal opens a secret with any identity and seals it again to the primary,
// for the same owner. It is the per-secret step of a rotation.
func (k *Keyring) Reseal(owner Owner, sealed []byte) ([]byte, error) {
	plaintext, err := k.Open(owner, sealed)
	if err != nil {
		return nil, err
	}
	defer clear(plaintext)
	return k.Seal(owner, plaintext)
}

// CanOpen reports whether some identity in the keyring opens sealed, whoever
// it was sealed for.
func (k *Keyring) CanOpen(sealed []byte) bool {
	_, plaintext, err := k.decrypt(sealed)
	clear(plaintext)
	return err == nil
}

// decrypt opens the age layer and decodes the envelope. age's own error text
// may quote input bytes, so it is replaced by fixed messages.
func (k *Keyring) decrypt(sealed []byte) (Owner, []byte, error) {
	if !IsSealed(sealed) {
		return Owner{}, nil, fmt.Errorf("%w (no age header)", ErrMalformedSealed)
	}
	r, err := age.Decrypt(bytes.NewReader(sealed), k.decryptors...)
	if err != nil {
		if _, noMatch := errors.AsType[*age.NoIdentityMatchError](err); noMatch {
			return Owner{}, nil, ErrNoIdentity
		}
		return Owner{}, nil, fmt.Errorf("%w (bad age header)", ErrMalformedSealed)
	}
	envelope, err := io.ReadAll(io.LimitReader(r, int64(maxEnvelopeSize)+1))
	if err != nil {
		return Owner{}, nil, fmt.Errorf("%w (payload failed authentication)", ErrMalformedSealed)
	}
	if len(envelope) > maxEnvelopeSize {
		return Owner{}, nil, fmt.Errorf("%w (payload too large)", ErrMalformedSealed)
	}
	owner, secret, err := decodeEnvelope(envelope)
	if err != nil {
		return Owner{}, nil, fmt.Errorf("%w (%v)", ErrMalformedSealed, err)
	}
	// Copy the secret out so the caller can clear it without aliasing the envelope.
	plaintext := bytes.Clone(secret)
	clear(envelope)
	return owner, plaintext, nil
}

// SealSecret is Seal for a Secret.
func (k *Keyring) SealSecret(owner Owner, secret Secret) ([]byte, error) {
	return k.Seal(owner, []byte(secret.Reveal()))
}

// OpenSecret is Open returning a Secret, so the plaintext stays redacted in
// logs and errors until it is revealed on purpose.
func (k *Keyring) OpenSecret(owner Owner, sealed []byte) (Secret, error) {
	plaintext, err := k.Open(owner, sealed)
	if err != nil {
		return Secret{}, err
	}
	defer clear(plaintext)
	return NewSecret(string(plaintext)), nil
}
