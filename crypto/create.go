package crypto

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"filippo.io/age"

	"github.com/sandbox0/sandbox0d/internal/secretfile"
)

// LoadOrCreateKeyring loads the identity file at path, or, if it does not
// exist, generates one identity and creates the file (directory 0700, file
// 0600) atomically without ever replacing an existing file. Either way it logs
// the path; on creation the line also says the file must be backed up. Key
// material is never logged. A nil log uses slog.Default().
//
// Do not call it for a systemd credential (read-only) or when the database
// already holds sealed secrets: a fresh identity cannot open them. StartupKeyring
// makes that decision.
func LoadOrCreateKeyring(path string, log *slog.Logger) (k *Keyring, created bool, err error) {
	if log == nil {
		log = slog.Default()
	}
	k, err = LoadKeyring(path)
	if err == nil {
		logLoaded(log, k)
		return k, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}

	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, false, fmt.Errorf("identity file %s: generate identity: %w", path, err)
	}
	identities := []*age.X25519Identity{id}
	if err := createFileExclusive(path, formatIdentityFile(identities)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Someone created it between our read and our create: use theirs.
			k, err := LoadKeyring(path)
			if err != nil {
				return nil, false, err
			}
			logLoaded(log, k)
			return k, false, nil
		}
		return nil, false, fmt.Errorf("identity file %s: %w", path, err)
	}
	k, err = newKeyring(path, identities)
	if err != nil {
		return nil, false, err
	}
	log.Warn("created a new age identity file for sealing secrets; back it up now: without it, stored authorization tokens cannot be opened",
		"path", path, "recipient", k.PrimaryRecipient())
	return k, true, nil
}

// logLoaded records which identity file is in use and warns about loose
// permissions, since anyone who can read it can open every sealed secret.
func logLoaded(log *slog.Logger, k *Keyring) {
	log.Info("loaded age identity file", "path", k.path, "identities", k.Len(), "primary_recipient", k.PrimaryRecipient())
	secretfile.WarnIfExposed(log, "identity_file", k.path)
}
