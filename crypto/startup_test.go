package crypto

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStartupKeyringCreatesIdentityOnlyForAnEmptyDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultIdentityFile)
	log, logs := capturedLogger()

	k, err := StartupKeyring(path, false, newFakeSecretStore().all(), log)
	require.NoError(t, err)
	assert.FileExists(t, path)
	assert.Contains(t, logs.String(), "back it up")

	// Second start with secrets sealed by that identity: loads, checks, no rewrite.
	store, _ := seedStore(t, k)
	before, err := os.ReadFile(path)
	require.NoError(t, err)
	log, logs = capturedLogger()
	again, err := StartupKeyring(path, false, store.all(), log)
	require.NoError(t, err)
	assert.Equal(t, k.PrimaryRecipient(), again.PrimaryRecipient())
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, before, after)
	assert.Contains(t, logs.String(), "secrets=4")
}

func TestStartupKeyringRefusesWhenSecretsCannotBeOpened(t *testing.T) {
	sealer, err := GenerateKeyring()
	require.NoError(t, err)
	tests := []struct {
		name           string
		writeFile      bool // an identity file exists, but it is the wrong one
		fromCredential bool
		wantInErr      []string
		wantMissing    bool
	}{
		{"identity file missing", false, false, []string{"does not exist", "Restore the backed-up identity file", "(mode 0600)"}, true},
		{"wrong identity file", true, false, []string{"4 of 4 sealed secrets (first: depl_a/resources/0) cannot be opened", "Restore the backed-up identity file"}, false},
		{"wrong systemd credential", true, true, []string{"cannot be opened", "LoadCredential=sandbox0d-identity:"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), DefaultIdentityFile)
			if tt.writeFile {
				_, _, err := LoadOrCreateKeyring(path, nil)
				require.NoError(t, err)
			}
			var before []byte
			if tt.writeFile {
				before, err = os.ReadFile(path)
				require.NoError(t, err)
			}
			store, want := seedStore(t, sealer)
			sealedBefore := map[Owner][]byte{}
			for o, b := range store.sealed {
				sealedBefore[o] = bytes.Clone(b)
			}

			k, err := StartupKeyring(path, tt.fromCredential, store.all(), nil)
			require.Error(t, err)
			assert.Nil(t, k)
			var unopenable *UnopenableSecretsError
			require.ErrorAs(t, err, &unopenable)
			assert.ErrorIs(t, err, ErrNoIdentity)
			assert.Equal(t, tt.wantMissing, unopenable.FileMissing)
			assert.Equal(t, 4, unopenable.Total)
			assert.Contains(t, err.Error(), path)
			assert.Contains(t, err.Error(), "refusing to start, the sealed secrets were not modified")
			for _, s := range tt.wantInErr {
				assert.Contains(t, err.Error(), s)
			}
			for _, plaintext := range want {
				assert.NotContains(t, err.Error(), plaintext)
			}

			assert.Equal(t, sealedBefore, store.sealed, "sealed data untouched")
			if tt.writeFile {
				after, err := os.ReadFile(path)
				require.NoError(t, err)
				assert.Equal(t, before, after, "identity file untouched")
			} else {
				assert.NoFileExists(t, path, "no fresh identity is created over lost secrets")
			}
		})
	}
}

func TestCheckSealedOpenCountsOnlyIdentityFailures(t *testing.T) {
	path, k := newIdentityFile(t)
	foreign, err := GenerateKeyring()
	require.NoError(t, err)

	store, _ := seedStore(t, k)
	store.put(t, foreign, Owner{"depl_z", 1}, "lost")
	store.put(t, foreign, Owner{"depl_y", 0}, "lost too")
	// A blob copied from another owner and a corrupted one: warnings, not fatal.
	store.sealed[Owner{"depl_moved", 0}] = store.sealed[Owner{"depl_a", 0}]
	store.sealed[Owner{"depl_corrupt", 0}] = []byte("age-encryption.org/v1\ngarbage")

	log, logs := capturedLogger()
	err = CheckSealedOpen(k, false, store.all(), log)
	var unopenable *UnopenableSecretsError
	require.ErrorAs(t, err, &unopenable)
	assert.Equal(t, 2, unopenable.Unopenable)
	assert.Equal(t, 8, unopenable.Total)
	assert.Equal(t, Owner{"depl_y", 0}, unopenable.First)
	assert.Equal(t, path, unopenable.IdentityPath)
	assert.Contains(t, logs.String(), "owner=depl_moved/resources/0 sealed_to=depl_a/resources/0")
	assert.Contains(t, logs.String(), "owner=depl_corrupt/resources/0")
	assert.NotContains(t, logs.String(), "ghp_token")

	delete(store.sealed, Owner{"depl_z", 1})
	delete(store.sealed, Owner{"depl_y", 0})
	require.NoError(t, CheckSealedOpen(k, false, store.all(), nil))
}

func TestStartupKeyringWithMultipleIdentitiesHintsAtInterruptedRotation(t *testing.T) {
	path, k := newIdentityFile(t)
	store, _ := seedStore(t, k)
	_, err := AppendNewIdentity(path)
	require.NoError(t, err)

	log, logs := capturedLogger()
	loaded, err := StartupKeyring(path, false, store.all(), log)
	require.NoError(t, err)
	assert.Equal(t, 2, loaded.Len())
	assert.Contains(t, logs.String(), "keys rotate")
}

func TestStartupKeyringMissingCredentialIsNotCreated(t *testing.T) {
	path := filepath.Join(t.TempDir(), CredentialName)
	_, err := StartupKeyring(path, true, newFakeSecretStore().all(), nil)
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.NoFileExists(t, path)
}

func TestStartupKeyringReportsAMalformedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity.age.txt")
	require.NoError(t, os.WriteFile(path, []byte("not a key\n"), 0o600))
	_, err := StartupKeyring(path, false, newFakeSecretStore().all(), nil)
	require.ErrorContains(t, err, path)
	require.ErrorContains(t, err, "line 1")
	content, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "not a key\n", string(content))
}
