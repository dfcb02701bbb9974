package crypto

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func generateIdentityLine(t *testing.T) (secretKey, recipient string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	return id.String(), id.Recipient().String()
}

func TestLoadKeyringParsesIdentityFiles(t *testing.T) {
	key1, rcpt1 := generateIdentityLine(t)
	key2, rcpt2 := generateIdentityLine(t)
	tests := []struct {
		name       string
		content    string
		recipients []string
	}{
		{"single key, no newline", key1, []string{rcpt1}},
		{"age-keygen style comments", "# created: 2025-01-01T00:00:00Z\n# public key: " + rcpt1 + "\n" + key1 + "\n", []string{rcpt1}},
		{"two keys, last is primary", key1 + "\n\n# rotated\n" + key2 + "\n", []string{rcpt1, rcpt2}},
		{"CRLF and surrounding spaces", "# windows\r\n  " + key1 + "  \r\n\r\n" + key2 + "\r\n", []string{rcpt1, rcpt2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "identity.age.txt")
			require.NoError(t, os.WriteFile(path, []byte(tt.content), 0o600))

			k, err := LoadKeyring(path)
			require.NoError(t, err)
			assert.Equal(t, tt.recipients, k.Recipients())
			assert.Equal(t, tt.recipients[len(tt.recipients)-1], k.PrimaryRecipient())
			assert.Equal(t, path, k.Path())
		})
	}
}

func TestLoadKeyringErrorsNamePathNotKeyMaterial(t *testing.T) {
	key, _ := generateIdentityLine(t)
	// Changing one character always breaks the bech32 checksum (or charset).
	badChecksum := key[:20] + string(rune(key[20]^1)) + key[21:]
	tests := []struct {
		name      string
		content   string
		wantInErr string
	}{
		{"empty file", "", "no identities found"},
		{"only comments", "# nothing here\n\n", "no identities found"},
		{"public key instead of secret key", "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\n", "line 1: not an age X25519 identity"},
		{"ssh key", "# ok\n-----BEGIN OPENSSH PRIVATE KEY-----\n", "line 2: not an age X25519 identity"},
		{"bad checksum", key + "\n" + badChecksum + "\n", "line 2: malformed age X25519 identity"},
		{"truncated key", key[:40] + "\n", "line 1: malformed"},
		{"post-quantum key", "AGE-SECRET-KEY-PQ-1QQQQQQQQQQ\n", "post-quantum"},
		{"too large", strings.Repeat("#"+strings.Repeat("x", 1023)+"\n", 1100), "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "identity.age.txt")
			require.NoError(t, os.WriteFile(path, []byte(tt.content), 0o600))

			k, err := LoadKeyring(path)
			require.Error(t, err)
			assert.Nil(t, k)
			assert.Contains(t, err.Error(), path)
			assert.Contains(t, err.Error(), tt.wantInErr)
			assert.NotContains(t, err.Error(), key[16:40], "valid key material")
			assert.NotContains(t, err.Error(), badChecksum[16:40], "invalid key material")
		})
	}
}

func TestLoadKeyringMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope", "identity.age.txt")
	_, err := LoadKeyring(path)
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.Contains(t, err.Error(), path)
}

func TestResolveIdentityPathPrecedence(t *testing.T) {
	dataDir := t.TempDir()
	credDir := t.TempDir()
	credFile := filepath.Join(credDir, CredentialName)
	require.NoError(t, os.WriteFile(credFile, []byte("x"), 0o400))
	emptyCredDir := t.TempDir()
	defaultPath := filepath.Join(dataDir, "keys", "identity.age.txt")

	tests := []struct {
		name           string
		credentialsDir string
		flag           string
		wantPath       string
		wantCredential bool
	}{
		{"flag beats credential", credDir, "/etc/sandbox0d/id.txt", "/etc/sandbox0d/id.txt", false},
		{"credential beats data dir", credDir, "", credFile, true},
		{"credentials dir without our credential", emptyCredDir, "", defaultPath, false},
		{"no credentials dir", "", "", defaultPath, false},
		{"flag without credentials dir", "", "/srv/id.txt", "/srv/id.txt", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CREDENTIALS_DIRECTORY", tt.credentialsDir)
			path, fromCredential := ResolveIdentityPath(dataDir, tt.flag)
			assert.Equal(t, tt.wantPath, path)
			assert.Equal(t, tt.wantCredential, fromCredential)
		})
	}
}
