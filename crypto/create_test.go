package crypto

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadOrCreateKeyringCreatesThenLoads(t *testing.T) {
	dataDir := t.TempDir()
	path := filepath.Join(dataDir, DefaultIdentityFile)

	log, logs := capturedLogger()
	k, created, err := LoadOrCreateKeyring(path, log)
	require.NoError(t, err)
	assert.True(t, created)
	assert.Equal(t, 1, k.Len())

	fileInfo, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fileInfo.Mode().Perm())
	dirInfo, err := os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), dirInfo.Mode().Perm())
	assert.NoFileExists(t, tempPath(path), "no temp file left behind")

	keys := identityLines(t, path)
	require.Len(t, keys, 1)
	assert.Contains(t, logs.String(), path)
	assert.Contains(t, logs.String(), "back it up")
	assert.Contains(t, logs.String(), k.PrimaryRecipient())
	assert.NotContains(t, logs.String(), keys[0])
	assert.NotContains(t, logs.String(), "AGE-SECRET-KEY")

	// A sealed secret from the first start opens after a restart.
	sealed, err := k.Seal(Owner{"depl_a", 0}, []byte(testToken))
	require.NoError(t, err)

	log, logs = capturedLogger()
	reloaded, created, err := LoadOrCreateKeyring(path, log)
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, k.PrimaryRecipient(), reloaded.PrimaryRecipient())
	assert.Equal(t, keys, identityLines(t, path), "the file is not rewritten")
	plaintext, err := reloaded.Open(Owner{"depl_a", 0}, sealed)
	require.NoError(t, err)
	assert.Equal(t, testToken, string(plaintext))
	assert.Contains(t, logs.String(), path)
	assert.NotContains(t, logs.String(), "AGE-SECRET-KEY")
	assert.NotContains(t, logs.String(), "chmod")
}

func TestLoadOrCreateKeyringNeverOverwritesAnExistingFile(t *testing.T) {
	key, recipient := generateIdentityLine(t)
	tests := []struct {
		name        string
		content     string
		wantErr     bool
		wantPrimary string
	}{
		{"valid file written by an operator", "# mine\n" + key + "\n", false, recipient},
		{"corrupted file", "AGE-SECRET-KEY-1GARBAGE\n", true, ""},
		{"empty file", "", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "identity.age.txt")
			require.NoError(t, os.WriteFile(path, []byte(tt.content), 0o600))

			k, created, err := LoadOrCreateKeyring(path, nil)
			assert.False(t, created)
			if tt.wantErr {
				require.Error(t, err)
				assert.Contains(t, err.Error(), path)
			} else {
				require.NoError(t, err)
				assert.Equal(t, tt.wantPrimary, k.PrimaryRecipient())
			}
			after, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, tt.content, string(after), "the file must be left exactly as it was")
		})
	}
}

func TestLoadOrCreateKeyringIgnoresLeftoverTempFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "identity.age.txt")
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(tempPath(path), []byte("AGE-SECRET-KEY-1PARTIAL"), 0o644))

	k, created, err := LoadOrCreateKeyring(path, nil)
	require.NoError(t, err)
	assert.True(t, created)
	assert.NoFileExists(t, tempPath(path))
	reloaded, err := LoadKeyring(path)
	require.NoError(t, err)
	assert.Equal(t, k.PrimaryRecipient(), reloaded.PrimaryRecipient())
}

func TestLoadOrCreateKeyringWarnsAboutLoosePermissions(t *testing.T) {
	key, _ := generateIdentityLine(t)
	path := filepath.Join(t.TempDir(), "identity.age.txt")
	require.NoError(t, os.WriteFile(path, []byte(key+"\n"), 0o600))
	require.NoError(t, os.Chmod(path, 0o644))

	log, logs := capturedLogger()
	_, _, err := LoadOrCreateKeyring(path, log)
	require.NoError(t, err)
	assert.Contains(t, logs.String(), "chmod 600")
	assert.Contains(t, logs.String(), path)
}
