package crypto

import (
	"bytes"
	"strings"
	"testing"

	"filippo.io/age"
)

func FuzzParseIdentities(f *testing.F) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		f.Fatal(err)
	}
	key := id.String()
	f.Add([]byte(key))
	f.Add([]byte("# comment\n\n" + key + "\r\n" + key + "\n"))
	f.Add([]byte(key[:30] + "\n"))
	f.Add([]byte("AGE-SECRET-KEY-PQ-1ABC\n"))
	f.Add([]byte("age1qqqq\n"))
	f.Add([]byte{0xff, 0xfe, '\n', 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		identities, err := parseIdentities(bytes.NewReader(data))
		if err != nil {
			if identities != nil {
				t.Fatal("identities returned with an error")
			}
			// Errors must never echo a key-looking line.
			for line := range strings.Lines(string(data)) {
				line = strings.TrimSpace(line)
				if len(line) >= 20 && strings.HasPrefix(line, "AGE-SECRET-KEY") && strings.Contains(err.Error(), line) {
					t.Fatalf("error %q quotes key material", err)
				}
			}
			return
		}
		if len(identities) == 0 {
			t.Fatal("no error and no identities")
		}
		// Whatever parsed must survive our own writer.
		again, err := parseIdentities(bytes.NewReader(formatIdentityFile(identities)))
		if err != nil || len(again) != len(identities) {
			t.Fatalf("rewritten file does not parse back: %v", err)
		}
	})
}

func FuzzOpen(f *testing.F) {
	k, err := GenerateKeyring()
	if err != nil {
		f.Fatal(err)
	}
	owner := Owner{"depl_a", 1}
	sealed, err := k.Seal(owner, []byte(testToken))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed)
	f.Add(sealed[:len(sealed)/2])
	f.Add([]byte(ageMagic))
	f.Add([]byte(ageMagic + "-> X25519 AAAA\nAAAA\n--- AAAA\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		plaintext, err := k.Open(owner, data)
		if err == nil {
			// Only an authentic blob sealed for this owner may open.
			if !bytes.Equal(plaintext, []byte(testToken)) {
				t.Fatalf("opened forged input to %q", plaintext)
			}
			return
		}
		if plaintext != nil {
			t.Fatal("plaintext returned with an error")
		}
		if strings.Contains(err.Error(), "TESTtoken") {
			t.Fatalf("error quotes the secret: %v", err)
		}
		_ = k.CanOpen(data)
	})
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add(encodeEnvelope(Owner{"depl_a", 3}, []byte(testToken)))
	f.Add([]byte(envelopeMagic + "\x01\x00"))
	f.Add([]byte(envelopeMagic + "\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		owner, secret, err := decodeEnvelope(data)
		if err != nil {
			return
		}
		if owner.Validate() != nil {
			t.Fatalf("decoded an invalid owner %+v", owner)
		}
		if !bytes.Equal(encodeEnvelope(owner, secret), data) {
			t.Fatal("decode/encode is not the identity on accepted input")
		}
	})
}

func FuzzSealOpenRoundTrip(f *testing.F) {
	k, err := GenerateKeyring()
	if err != nil {
		f.Fatal(err)
	}
	f.Add("depl_a", 0, []byte(testToken))
	f.Add("d", MaxPosition, []byte{})
	f.Fuzz(func(t *testing.T, deploymentID string, position int, secret []byte) {
		owner := Owner{deploymentID, position}
		sealed, err := k.Seal(owner, secret)
		if err != nil {
			if owner.Validate() == nil && len(secret) <= MaxSecretSize {
				t.Fatalf("valid input rejected: %v", err)
			}
			return
		}
		opened, err := k.Open(owner, sealed)
		if err != nil || !bytes.Equal(opened, secret) {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}
