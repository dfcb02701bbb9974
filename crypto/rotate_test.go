package crypto

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seedStore seals a few secrets for several owners with k.
func seedStore(t *testing.T, k *Keyring) (*fakeSecretStore, map[Owner]string) {
	t.Helper()
	store := newFakeSecretStore()
	want := map[Owner]string{}
	for i, owner := range []Owner{{"depl_a", 0}, {"depl_a", 1}, {"depl_b", 0}, {"depl_c", 7}} {
		plaintext := fmt.Sprintf("ghp_token_%d", i)
		store.put(t, k, owner, plaintext)
		want[owner] = plaintext
	}
	return store, want
}

func TestRotationStepByStep(t *testing.T) {
	path, original := newIdentityFile(t)
	owner := Owner{"depl_a", 0}
	oldBlob, err := original.Seal(owner, []byte(testToken))
	require.NoError(t, err)

	// Step 1: old + new primary on disk; the old blob still opens.
	next, err := AppendNewIdentity(path)
	require.NoError(t, err)
	require.Equal(t, 2, next.Len())
	assert.Len(t, identityLines(t, path), 2)
	onDisk, err := LoadKeyring(path)
	require.NoError(t, err)
	assert.Equal(t, next.Recipients(), onDisk.Recipients())
	assert.Equal(t, []string{original.PrimaryRecipient(), next.PrimaryRecipient()}, onDisk.Recipients())
	plaintext, err := onDisk.Open(owner, oldBlob)
	require.NoError(t, err)
	assert.Equal(t, testToken, string(plaintext))

	// Step 2: re-seal moves the secret to the new primary.
	newBlob, err := onDisk.Reseal(owner, oldBlob)
	require.NoError(t, err)
	assert.True(t, onDisk.PrimaryOnly().CanOpen(newBlob))

	// Step 3: only the primary remains; only re-sealed blobs open.
	final, err := RetireAllButPrimary(path)
	require.NoError(t, err)
	assert.Equal(t, 1, final.Len())
	assert.Equal(t, next.PrimaryRecipient(), final.PrimaryRecipient())
	onDisk, err = LoadKeyring(path)
	require.NoError(t, err)
	assert.Equal(t, []string{next.PrimaryRecipient()}, onDisk.Recipients())

	plaintext, err = onDisk.Open(owner, newBlob)
	require.NoError(t, err)
	assert.Equal(t, testToken, string(plaintext))
	_, err = onDisk.Open(owner, oldBlob)
	require.ErrorIs(t, err, ErrNoIdentity)

	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "rewrites keep the file private")
	assert.NoFileExists(t, tempPath(path))

	// Retiring again is a no-op.
	again, err := RetireAllButPrimary(path)
	require.NoError(t, err)
	assert.Equal(t, final.Recipients(), again.Recipients())
}

func TestRotateEndToEnd(t *testing.T) {
	path, original := newIdentityFile(t)
	store, want := seedStore(t, original)

	log, logs := capturedLogger()
	final, err := Rotate(path, store.resealAll, store.all(), log)
	require.NoError(t, err)
	assert.Equal(t, 1, final.Len())
	assert.NotEqual(t, original.PrimaryRecipient(), final.PrimaryRecipient())
	store.requireAllOpen(t, path, want)
	for _, blob := range store.sealed {
		assert.False(t, original.CanOpen(blob), "every secret moved off the retired identity")
	}
	assert.Contains(t, logs.String(), "retired old identities")
	assert.NotContains(t, logs.String(), "AGE-SECRET-KEY")
	for _, plaintext := range want {
		assert.NotContains(t, logs.String(), plaintext)
	}
}

// Every way a rotation can stop half-way must leave each stored secret
// openable with the identity file on disk, and a rerun must finish the job.
func TestInterruptedRotationLeavesEverySecretOpenable(t *testing.T) {
	tests := []struct {
		name      string
		interrupt func(t *testing.T, path string, store *fakeSecretStore) error
	}{
		{
			name: "crash while writing the new identity file (garbage temp file left)",
			interrupt: func(t *testing.T, path string, _ *fakeSecretStore) error {
				return os.WriteFile(tempPath(path), []byte("AGE-SECRET-KEY-1HALFWRITT"), 0o600)
			},
		},
		{
			name: "crash after fsync of the temp file, before rename",
			interrupt: func(t *testing.T, path string, _ *fakeSecretStore) error {
				key, _ := generateIdentityLine(t)
				return os.WriteFile(tempPath(path), []byte(key+"\n"), 0o600)
			},
		},
		{
			name: "crash after adding the identity, before re-sealing",
			interrupt: func(t *testing.T, path string, _ *fakeSecretStore) error {
				_, err := AppendNewIdentity(path)
				return err
			},
		},
		{
			name: "re-seal transaction fails and rolls back",
			interrupt: func(t *testing.T, path string, store *fakeSecretStore) error {
				failing := func(next *Keyring) error { return errors.New("bbolt: disk full") }
				_, err := Rotate(path, failing, store.all(), nil)
				require.ErrorContains(t, err, "disk full")
				require.ErrorContains(t, err, path)
				return nil
			},
		},
		{
			name: "crash after the re-seal committed, before retiring",
			interrupt: func(t *testing.T, path string, store *fakeSecretStore) error {
				next, err := AppendNewIdentity(path)
				if err != nil {
					return err
				}
				return store.resealAll(next)
			},
		},
		{
			name: "re-seal skipped a secret: Rotate refuses to retire",
			interrupt: func(t *testing.T, path string, store *fakeSecretStore) error {
				skipOne := func(next *Keyring) error {
					owner := Owner{"depl_b", 0}
					kept := store.sealed[owner]
					if err := store.resealAll(next); err != nil {
						return err
					}
					store.sealed[owner] = kept
					return nil
				}
				_, err := Rotate(path, skipOne, store.all(), nil)
				require.ErrorContains(t, err, "1 of 4 sealed secrets are not sealed to the new primary (first: depl_b/resources/0)")
				return nil
			},
		},
		{
			name: "a second rotation is interrupted after the first one was",
			interrupt: func(t *testing.T, path string, store *fakeSecretStore) error {
				if _, err := AppendNewIdentity(path); err != nil {
					return err
				}
				next, err := AppendNewIdentity(path)
				if err != nil {
					return err
				}
				return store.resealAll(next)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, original := newIdentityFile(t)
			store, want := seedStore(t, original)

			require.NoError(t, tt.interrupt(t, path, store))
			store.requireAllOpen(t, path, want)

			// Restart and rotate again: completes, and everything still opens.
			final, err := Rotate(path, store.resealAll, store.all(), nil)
			require.NoError(t, err)
			assert.Equal(t, 1, final.Len())
			assert.NoFileExists(t, tempPath(path))
			store.requireAllOpen(t, path, want)
		})
	}
}

func TestRotateRefusesToRetireWhenTheFileChangedUnderIt(t *testing.T) {
	path, original := newIdentityFile(t)
	store, want := seedStore(t, original)

	racing := func(next *Keyring) error {
		if err := store.resealAll(next); err != nil {
			return err
		}
		_, err := AppendNewIdentity(path) // someone else starts a rotation
		return err
	}
	_, err := Rotate(path, racing, store.all(), nil)
	require.ErrorContains(t, err, "changed during rotation")
	onDisk, err := LoadKeyring(path)
	require.NoError(t, err)
	assert.Equal(t, 3, onDisk.Len(), "nothing retired")
	store.requireAllOpen(t, path, want)
}

func TestRotationOnMissingFileFails(t *testing.T) {
	path := t.TempDir() + "/missing.txt"
	_, err := AppendNewIdentity(path)
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = RetireAllButPrimary(path)
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.NoFileExists(t, path)
}
