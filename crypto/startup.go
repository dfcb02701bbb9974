package crypto

import (
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"log/slog"
	"strings"
)

// UnopenableSecretsError means the database holds sealed secrets that the
// identity file cannot open (it is missing, wrong, or lost identities). The
// daemon must refuse to start on it and leave the sealed data untouched; the
// message tells the operator which file to restore and how.
type UnopenableSecretsError struct {
	IdentityPath   string
	FromCredential bool  // the path is a systemd credential
	FileMissing    bool  // the identity file does not exist at all
	Unopenable     int   // sealed secrets no identity opens
	Total          int   // sealed secrets in the database
	First          Owner // the first secret that cannot be opened
}

func (e *UnopenableSecretsError) Error() string {
	var b strings.Builder
	if e.FileMissing {
		fmt.Fprintf(&b, "the database holds %d sealed secrets but the identity file %s does not exist", e.Total, e.IdentityPath)
	} else {
		fmt.Fprintf(&b, "%d of %d sealed secrets (first: %s) cannot be opened by any identity in %s", e.Unopenable, e.Total, e.First, e.IdentityPath)
	}
	b.WriteString("; refusing to start, the sealed secrets were not modified. ")
	if e.FromCredential {
		fmt.Fprintf(&b, "Point the systemd credential (LoadCredential=%s:<file>) at the backed-up identity file that sealed them, or pass --identity-file.", CredentialName)
	} else {
		fmt.Fprintf(&b, "Restore the backed-up identity file that sealed them to %s (mode 0600), or pass --identity-file <backup>.", e.IdentityPath)
	}
	b.WriteString(" Without that identity the secrets are lost: `sandbox0d keys forget-unopenable --data-dir DIR` (daemon stopped)" +
		" drops just the tokens no identity opens, keeping the deployments; then start and set them again on each deployment.")
	return b.String()
}

// Unwrap lets callers test for the cause with errors.Is(err, ErrNoIdentity).
func (e *UnopenableSecretsError) Unwrap() error { return ErrNoIdentity }

// StartupKeyring loads the keyring the daemon runs with and proves it opens
// the database's sealed secrets. path and fromCredential come from
// ResolveIdentityPath; sealed yields every stored sealed secret and may be
// iterated twice.
//
// A missing identity file is created (LoadOrCreateKeyring) only when the
// database holds no sealed secret and the path is not a credential. If sealed
// secrets exist that no identity opens, it returns *UnopenableSecretsError;
// secrets bound to the wrong owner or corrupted are logged as warnings, since
// they fail only the deployment that holds them.
func StartupKeyring(path string, fromCredential bool, sealed iter.Seq2[Owner, []byte], log *slog.Logger) (*Keyring, error) {
	if log == nil {
		log = slog.Default()
	}
	k, err := LoadKeyring(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		total, first := countSealed(sealed)
		if total > 0 {
			return nil, &UnopenableSecretsError{
				IdentityPath: path, FromCredential: fromCredential, FileMissing: true,
				Unopenable: total, Total: total, First: first,
			}
		}
		if fromCredential {
			return nil, fmt.Errorf("systemd credential %s: %w", CredentialName, err)
		}
		k, _, err := LoadOrCreateKeyring(path, log)
		return k, err
	case err != nil:
		return nil, err
	}
	logLoaded(log, k)
	if k.Len() > 1 {
		log.Info("identity file holds several identities; if a key rotation was interrupted, run `sandbox0d keys rotate` again to finish it",
			"path", path, "identities", k.Len())
	}
	if err := CheckSealedOpen(k, fromCredential, sealed, log); err != nil {
		return nil, err
	}
	return k, nil
}

// CheckSealedOpen opens every sealed secret with k. It returns
// *UnopenableSecretsError if any of them no identity opens; owner mismatches
// and corrupted blobs are logged (by owner, never content) and not fatal.
func CheckSealedOpen(k *Keyring, fromCredential bool, sealed iter.Seq2[Owner, []byte], log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	unopenable := &UnopenableSecretsError{IdentityPath: k.path, FromCredential: fromCredential}
	for owner, blob := range sealed {
		unopenable.Total++
		plaintext, err := k.Open(owner, blob)
		clear(plaintext)
		var mismatch *OwnerMismatchError
		switch {
		case err == nil:
		case errors.Is(err, ErrNoIdentity):
			if unopenable.Unopenable == 0 {
				unopenable.First = owner
			}
			unopenable.Unopenable++
		case errors.As(err, &mismatch):
			log.Warn("sealed secret is bound to another owner and will fail when used; set it again",
				"owner", owner.String(), "sealed_to", mismatch.SealedTo.String())
		default:
			log.Warn("sealed secret is corrupted and will fail when used; set it again", "owner", owner.String(), "error", err)
		}
	}
	if unopenable.Unopenable > 0 {
		return unopenable
	}
	log.Info("sealed secrets open with the identity file", "secrets", unopenable.Total, "path", k.path)
	return nil
}

// countSealed counts the sealed secrets and remembers the first owner.
func countSealed(sealed iter.Seq2[Owner, []byte]) (total int, first Owner) {
	for owner := range sealed {
		if total == 0 {
			first = owner
		}
		total++
	}
	return total, first
}
