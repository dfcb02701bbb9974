package crypto

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	owner := Owner{"depl_01abc", 7}
	encoded := encodeEnvelope(owner, []byte(testToken))
	assert.Equal(t, "s0dsec\x01", string(encoded[:7]), "magic then version 1")

	decodedOwner, secret, err := decodeEnvelope(encoded)
	require.NoError(t, err)
	assert.Equal(t, owner, decodedOwner)
	assert.Equal(t, testToken, string(secret))
}

func TestDecodeEnvelopeRejectsBadStructure(t *testing.T) {
	valid := encodeEnvelope(Owner{"depl_a", 1}, []byte(testToken))
	withVersion := func(v byte) []byte {
		b := append([]byte(nil), valid...)
		b[len(envelopeMagic)] = v
		return b
	}
	header := []byte(envelopeMagic + "\x01")
	tests := []struct {
		name      string
		input     []byte
		wantInErr string
	}{
		{"empty", nil, "missing magic"},
		{"raw token", []byte(testToken), "missing magic"},
		{"future version", withVersion(2), "unsupported version 2"},
		{"zero-length deployment id", append(append([]byte{}, header...), 0, 1), "deployment id length"},
		{"deployment id longer than the data", append(append([]byte{}, header...), 10, 'd'), "deployment id length"},
		{"deployment id over the limit", binary.AppendUvarint(append([]byte{}, header...), 300), "deployment id length"},
		{"non-minimal length varint", append(append([]byte{}, header...), 0x81, 0x00, 'd', 0), "deployment id length"},
		{"missing position", append(append([]byte{}, header...), 1, 'd'), "resource position"},
		{"position over the limit", binary.AppendUvarint(append(append([]byte{}, header...), 1, 'd'), MaxPosition+1), "resource position"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := decodeEnvelope(tt.input)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantInErr)
			assert.NotContains(t, err.Error(), testToken)
		})
	}
}
