package crypto

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MaxSecretSize bounds one secret. Tokens are a few hundred bytes; the bound
// keeps a hostile or corrupted blob from making Open allocate without limit.
const MaxSecretSize = 64 << 10

const (
	envelopeMagic   = "s0dsec"
	envelopeVersion = 1
	// maxEnvelopeSize is the largest envelope encodeEnvelope can produce.
	maxEnvelopeSize = len(envelopeMagic) + 1 + binary.MaxVarintLen64 + maxDeploymentIDLen + binary.MaxVarintLen64 + MaxSecretSize
)

// encodeEnvelope lays out the age plaintext described in the package doc. The
// owner must already be valid.
func encodeEnvelope(owner Owner, secret []byte) []byte {
	buf := make([]byte, 0, len(envelopeMagic)+1+2*binary.MaxVarintLen64+len(owner.DeploymentID)+len(secret))
	buf = append(buf, envelopeMagic...)
	buf = append(buf, envelopeVersion)
	buf = binary.AppendUvarint(buf, uint64(len(owner.DeploymentID)))
	buf = append(buf, owner.DeploymentID...)
	buf = binary.AppendUvarint(buf, uint64(owner.Position))
	return append(buf, secret...)
}

// decodeEnvelope is the inverse of encodeEnvelope. Its errors describe the
// structure only, never the bytes, because the tail is the secret.
func decodeEnvelope(b []byte) (Owner, []byte, error) {
	if len(b) < len(envelopeMagic)+1 || string(b[:len(envelopeMagic)]) != envelopeMagic {
		return Owner{}, nil, errors.New("envelope: missing magic")
	}
	rest := b[len(envelopeMagic):]
	if v := rest[0]; v != envelopeVersion {
		return Owner{}, nil, fmt.Errorf("envelope: unsupported version %d", v)
	}
	rest = rest[1:]

	idLen, n := canonicalUvarint(rest)
	if n <= 0 || idLen == 0 || idLen > maxDeploymentIDLen || idLen > uint64(len(rest)-n) {
		return Owner{}, nil, errors.New("envelope: bad deployment id length")
	}
	rest = rest[n:]
	deploymentID := string(rest[:idLen])
	rest = rest[idLen:]

	position, n := canonicalUvarint(rest)
	if n <= 0 || position > MaxPosition {
		return Owner{}, nil, errors.New("envelope: bad resource position")
	}
	rest = rest[n:]
	if len(rest) > MaxSecretSize {
		return Owner{}, nil, errors.New("envelope: secret too large")
	}
	return Owner{DeploymentID: deploymentID, Position: int(position)}, rest, nil
}

// canonicalUvarint is binary.Uvarint that also rejects non-minimal encodings
// (a trailing zero continuation byte), so every owner has exactly one encoding.
func canonicalUvarint(b []byte) (uint64, int) {
	v, n := binary.Uvarint(b)
	if n > 1 && b[n-1] == 0 {
		return 0, -1
	}
	return v, n
}
