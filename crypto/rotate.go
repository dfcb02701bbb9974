package crypto

import (
	"fmt"
	"iter"
	"log/slog"
	"slices"

	"filippo.io/age"
)

// Rotation happens in three steps, each leaving every secret openable with
// the identity file on disk if the process dies right after it:
//
//  1. AppendNewIdentity: the file holds the old identities plus a new primary.
//  2. The caller re-seals every secret with Keyring.Reseal in one bbolt
//     transaction. Until it commits, secrets are sealed to an old identity,
//     which the file still holds.
//  3. RetireAllButPrimary: the file holds only the new primary, which every
//     committed secret is now sealed to.
//
// Rotate runs all three and checks the database between steps 2 and 3.

// AppendNewIdentity generates an identity and atomically rewrites the file at
// path to hold the existing identities followed by the new one, which becomes
// primary. Comments in the file are replaced by generated ones.
func AppendNewIdentity(path string) (*Keyring, error) {
	current, err := LoadKeyring(path)
	if err != nil {
		return nil, err
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, fmt.Errorf("identity file %s: generate identity: %w", path, err)
	}
	identities := append(slices.Clone(current.identities), id)
	if err := replaceFileAtomic(path, formatIdentityFile(identities)); err != nil {
		return nil, fmt.Errorf("identity file %s: add identity: %w", path, err)
	}
	return newKeyring(path, identities)
}

// RetireAllButPrimary atomically rewrites the file at path to hold only its
// primary identity. Call it only after every secret has been re-sealed to the
// primary and that transaction committed; Rotate checks this for you.
func RetireAllButPrimary(path string) (*Keyring, error) {
	return retireAllBut(path, "")
}

// retireAllBut retires every identity except the primary; if wantPrimary is
// set, it refuses when the file's primary is a different recipient (the file
// changed under a running rotation).
func retireAllBut(path, wantPrimary string) (*Keyring, error) {
	current, err := LoadKeyring(path)
	if err != nil {
		return nil, err
	}
	if wantPrimary != "" && current.PrimaryRecipient() != wantPrimary {
		return nil, fmt.Errorf("identity file %s: primary is %s, expected %s; the file changed during rotation, nothing retired",
			path, current.PrimaryRecipient(), wantPrimary)
	}
	if current.Len() == 1 {
		return current, nil
	}
	primaryOnly := current.PrimaryOnly()
	if err := replaceFileAtomic(path, formatIdentityFile(primaryOnly.identities)); err != nil {
		return nil, fmt.Errorf("identity file %s: retire old identities: %w", path, err)
	}
	return primaryOnly, nil
}

// Rotate runs a full rotation of the identity file at path.
//
// resealAll receives the keyring with the new primary and must re-seal every
// stored secret with next.Reseal inside one bbolt transaction, returning only
// after it committed (and swapping the daemon's keyring to next, if one is
// running). sealed must yield every stored sealed secret from a fresh read of
// the database; Rotate uses it to confirm that the new primary alone opens all
// of them before it retires the old identities.
//
// On any error the file still holds every identity a stored secret needs;
// running Rotate again is safe (it adds another identity and finishes).
func Rotate(path string, resealAll func(next *Keyring) error, sealed iter.Seq2[Owner, []byte], log *slog.Logger) (*Keyring, error) {
	if log == nil {
		log = slog.Default()
	}
	next, err := AppendNewIdentity(path)
	if err != nil {
		return nil, fmt.Errorf("rotate: %w", err)
	}
	log.Info("rotation: added new primary identity", "path", path, "recipient", next.PrimaryRecipient(), "identities", next.Len())

	if err := resealAll(next); err != nil {
		return nil, fmt.Errorf("rotate: re-seal secrets: %w (identity file %s keeps the old and new identities, every secret stays openable; run the rotation again)", err, path)
	}

	primaryOnly := next.PrimaryOnly()
	var total, stale int
	var firstStale Owner
	for owner, blob := range sealed {
		total++
		if !primaryOnly.CanOpen(blob) {
			if stale == 0 {
				firstStale = owner
			}
			stale++
		}
	}
	if stale > 0 {
		return nil, fmt.Errorf("rotate: %d of %d sealed secrets are not sealed to the new primary (first: %s); old identities kept in %s",
			stale, total, firstStale, path)
	}
	log.Info("rotation: re-sealed every secret to the new primary", "secrets", total)

	final, err := retireAllBut(path, next.PrimaryRecipient())
	if err != nil {
		return nil, fmt.Errorf("rotate: %w", err)
	}
	log.Info("rotation: retired old identities", "path", path, "recipient", final.PrimaryRecipient())
	return final, nil
}
