package local

import (
	"errors"
	"slices"

	"github.com/sandbox0/sandbox0d/sessions/local/projection"
)

// The seam between vaults created through the API and credential
// projection: apiVaultCredentials opens an API vault's credentials for one
// turn, in the one type every producer of credentials hands on
// (projection.Credential). Config-file vaults produce the same type from
// their files (vaultEnv in create.go).

// apiVaultCredentials returns the opened (decrypted) credentials of a vault
// created through the API, ordered by creation; found is false when
// vaultID is not such a vault (a config vault, or none). Archived
// credentials are left out: archiving retires a secret. The values live
// in memory only; errors name the vault and credential, never a value.
func (b *Backend) apiVaultCredentials(vaultID string) (creds []projection.Credential, found bool, err error) {
	if _, err := getOne[apiVault](b.catalog, bucketAPIVaults, []byte(vaultID)); errors.Is(err, errNoRecord) {
		return nil, false, nil
	} else if err != nil {
		return nil, true, err
	}
	stored, err := listAll[apiCredential](b.catalog, bucketAPICredentials, []byte(vaultID+"/"))
	if err != nil {
		return nil, true, err
	}
	slices.SortFunc(stored, func(x, y apiCredential) int { return x.CreatedAt.Compare(y.CreatedAt) })
	for _, c := range stored {
		if c.ArchivedAt != nil {
			continue
		}
		value, err := b.open(c)
		if err != nil {
			return nil, true, err
		}
		cred := projection.Credential{VaultID: vaultID, ID: c.ID, Name: c.SecretName, Value: value,
			Header: c.Header, Body: c.Body}
		if c.Limited {
			cred.Hosts = slices.Clone(c.Hosts)
		}
		creds = append(creds, cred)
	}
	return creds, true, nil
}

// apiVaultState says whether id is a vault created through the API, and
// whether it is archived (new sessions may not use it then).
func (b *Backend) apiVaultState(id string) (found, archived bool) {
	v, err := getOne[apiVault](b.catalog, bucketAPIVaults, []byte(id))
	if err != nil {
		return false, false
	}
	return true, v.ArchivedAt != nil
}
