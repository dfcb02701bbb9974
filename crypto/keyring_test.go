package crypto

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSealOpenRoundTrip(t *testing.T) {
	k, err := GenerateKeyring()
	require.NoError(t, err)
	tests := []struct {
		name      string
		owner     Owner
		plaintext []byte
	}{
		{"github token", Owner{"depl_01abc", 0}, []byte(testToken)},
		{"empty secret", Owner{"depl_01abc", 3}, []byte{}},
		{"binary and unicode", Owner{"depl_ünï", 499}, []byte("tök\x00en\xff")},
		{"largest allowed", Owner{"depl_big", MaxPosition}, bytes.Repeat([]byte{'x'}, MaxSecretSize)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := k.Seal(tt.owner, tt.plaintext)
			require.NoError(t, err)
			if len(tt.plaintext) >= 8 {
				assert.False(t, bytes.Contains(sealed, tt.plaintext), "sealed bytes contain the plaintext")
			}

			opened, err := k.Open(tt.owner, sealed)
			require.NoError(t, err)
			assert.Equal(t, tt.plaintext, opened)
			assert.True(t, k.CanOpen(sealed))
		})
	}
}

func TestSealedBlobIsBinaryAgeAndRandomized(t *testing.T) {
	k, err := GenerateKeyring()
	require.NoError(t, err)
	owner := Owner{"depl_x", 1}

	first, err := k.Seal(owner, []byte(testToken))
	require.NoError(t, err)
	second, err := k.Seal(owner, []byte(testToken))
	require.NoError(t, err)

	assert.True(t, IsSealed(first))
	assert.True(t, bytes.HasPrefix(first, []byte("age-encryption.org/v1\n-> X25519 ")), "one X25519 stanza, binary age")
	assert.NotContains(t, string(first), "-----BEGIN", "must not be armored")
	assert.NotEqual(t, first, second, "each seal uses a fresh file key")
	assert.Less(t, len(first), 300+len(testToken), "a sealed token stays small in bbolt")
	assert.False(t, IsSealed([]byte(testToken)))
}

func TestOpenRejectsCiphertextMovedToAnotherOwner(t *testing.T) {
	k, err := GenerateKeyring()
	require.NoError(t, err)
	sealedFor := Owner{"depl_a", 2}
	sealed, err := k.Seal(sealedFor, []byte(testToken))
	require.NoError(t, err)

	tests := []struct {
		name   string
		openAs Owner
	}{
		{"other deployment, same position", Owner{"depl_b", 2}},
		{"same deployment, other position", Owner{"depl_a", 3}},
		{"deployment id prefix", Owner{"depl_", 2}},
		{"both differ", Owner{"depl_c", 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plaintext, err := k.Open(tt.openAs, sealed)
			require.Error(t, err)
			assert.Nil(t, plaintext)

			var mismatch *OwnerMismatchError
			require.ErrorAs(t, err, &mismatch)
			assert.Equal(t, tt.openAs, mismatch.Expected)
			assert.Equal(t, sealedFor, mismatch.SealedTo)
			assert.Contains(t, err.Error(), sealedFor.String())
			assert.Contains(t, err.Error(), tt.openAs.String())
			assert.NotContains(t, err.Error(), testToken)
			assert.NotErrorIs(t, err, ErrNoIdentity)
		})
	}
}

func TestOpenWithForeignKeyringFailsWithErrNoIdentity(t *testing.T) {
	owner := Owner{"depl_a", 0}
	sealer, err := GenerateKeyring()
	require.NoError(t, err)
	foreign, err := GenerateKeyring()
	require.NoError(t, err)
	sealed, err := sealer.Seal(owner, []byte(testToken))
	require.NoError(t, err)

	plaintext, err := foreign.Open(owner, sealed)
	require.ErrorIs(t, err, ErrNoIdentity)
	assert.Nil(t, plaintext)
	assert.Contains(t, err.Error(), owner.String())
	assert.NotContains(t, err.Error(), testToken)
	assert.False(t, foreign.CanOpen(sealed))

	_, err = foreign.Reseal(owner, sealed)
	require.ErrorIs(t, err, ErrNoIdentity)
}

func TestOpenRejectsMalformedInputWithoutQuotingIt(t *testing.T) {
	k, err := GenerateKeyring()
	require.NoError(t, err)
	owner := Owner{"depl_a", 0}
	sealed, err := k.Seal(owner, []byte(testToken))
	require.NoError(t, err)

	flipLastByte := bytes.Clone(sealed)
	flipLastByte[len(flipLastByte)-1] ^= 1
	headerEnd := bytes.Index(sealed, []byte("\n--- ")) + len("\n--- ")
	flipHeaderMAC := bytes.Clone(sealed)
	flipHeaderMAC[headerEnd] ^= 1

	tests := []struct {
		name  string
		input []byte
	}{
		{"nil", nil},
		{"plaintext token stored by mistake", []byte(testToken)},
		{"age magic followed by the token", []byte("age-encryption.org/v1\n-> " + testToken + "\n")},
		{"truncated payload", sealed[:len(sealed)-10]},
		{"truncated header", sealed[:40]},
		{"payload bit flipped", flipLastByte},
		{"header MAC bit flipped", flipHeaderMAC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plaintext, err := k.Open(owner, tt.input)
			require.ErrorIs(t, err, ErrMalformedSealed)
			assert.Nil(t, plaintext)
			assert.NotContains(t, err.Error(), testToken)
			assert.NotContains(t, err.Error(), "TESTtoken")
			assert.False(t, k.CanOpen(tt.input))
		})
	}
}

func TestSealRejectsInvalidInput(t *testing.T) {
	k, err := GenerateKeyring()
	require.NoError(t, err)
	tests := []struct {
		name      string
		owner     Owner
		plaintext []byte
		wantInErr string
	}{
		{"empty deployment id", Owner{"", 0}, []byte(testToken), "deployment id is empty"},
		{"negative position", Owner{"depl_a", -1}, []byte(testToken), "position -1"},
		{"deployment id too long", Owner{strings.Repeat("d", 257), 0}, []byte(testToken), "longer than 256"},
		{"secret too large", Owner{"depl_a", 0}, make([]byte, MaxSecretSize+1), "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := k.Seal(tt.owner, tt.plaintext)
			require.Error(t, err)
			assert.Nil(t, sealed)
			assert.Contains(t, err.Error(), tt.wantInErr)
			assert.NotContains(t, err.Error(), testToken)
		})
	}
}

func TestResealKeepsOwnerAndMovesToPrimary(t *testing.T) {
	path, first := newIdentityFile(t)
	owner := Owner{"depl_a", 4}
	sealed, err := first.Seal(owner, []byte(testToken))
	require.NoError(t, err)

	next, err := AppendNewIdentity(path)
	require.NoError(t, err)
	assert.False(t, next.PrimaryOnly().CanOpen(sealed), "the old blob is not sealed to the new primary")

	resealed, err := next.Reseal(owner, sealed)
	require.NoError(t, err)
	assert.True(t, next.PrimaryOnly().CanOpen(resealed))
	assert.False(t, first.CanOpen(resealed))
	plaintext, err := next.Open(owner, resealed)
	require.NoError(t, err)
	assert.Equal(t, testToken, string(plaintext))

	_, err = next.Reseal(Owner{"depl_other", 4}, sealed)
	var mismatch *OwnerMismatchError
	require.ErrorAs(t, err, &mismatch, "reseal must not launder a secret onto another owner")
}

func TestSealSecretAndOpenSecret(t *testing.T) {
	k, err := GenerateKeyring()
	require.NoError(t, err)
	owner := Owner{"depl_a", 0}
	sealed, err := k.SealSecret(owner, NewSecret(testToken))
	require.NoError(t, err)

	secret, err := k.OpenSecret(owner, sealed)
	require.NoError(t, err)
	assert.Equal(t, testToken, secret.Reveal())

	secret, err = k.OpenSecret(Owner{"depl_b", 0}, sealed)
	require.Error(t, err)
	assert.True(t, secret.IsZero())
}

func TestKeyringAccessors(t *testing.T) {
	path, first := newIdentityFile(t)
	next, err := AppendNewIdentity(path)
	require.NoError(t, err)

	assert.Equal(t, 1, first.Len())
	assert.Equal(t, 2, next.Len())
	assert.Equal(t, path, next.Path())
	assert.True(t, strings.HasPrefix(next.PrimaryRecipient(), "age1"))
	assert.Equal(t, []string{first.PrimaryRecipient(), next.PrimaryRecipient()}, next.Recipients())
	assert.NotEqual(t, first.PrimaryRecipient(), next.PrimaryRecipient())
	assert.Equal(t, 1, next.PrimaryOnly().Len())
	assert.Equal(t, next.PrimaryRecipient(), next.PrimaryOnly().PrimaryRecipient())
}

func TestOwnerString(t *testing.T) {
	assert.Equal(t, "depl_x/resources/3", Owner{"depl_x", 3}.String())
}
