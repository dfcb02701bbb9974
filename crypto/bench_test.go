package crypto

import (
	"testing"

	"filippo.io/age"
)

func BenchmarkSeal(b *testing.B) {
	k, err := GenerateKeyring()
	if err != nil {
		b.Fatal(err)
	}
	owner := Owner{"depl_01jabcdefghijklmnop", 3}
	plaintext := []byte(testToken)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Seal(owner, plaintext); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	k, err := GenerateKeyring()
	if err != nil {
		b.Fatal(err)
	}
	owner := Owner{"depl_01jabcdefghijklmnop", 3}
	sealed, err := k.Seal(owner, []byte(testToken))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Open(owner, sealed); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenDuringRotation opens a secret sealed to the oldest of three
// identities: the worst case while a rotation is pending.
func BenchmarkOpenDuringRotation(b *testing.B) {
	var identities []*age.X25519Identity
	for range 3 {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			b.Fatal(err)
		}
		identities = append(identities, id)
	}
	oldest, err := newKeyring("", identities[:1])
	if err != nil {
		b.Fatal(err)
	}
	ring, err := newKeyring("", identities)
	if err != nil {
		b.Fatal(err)
	}
	owner := Owner{"depl_01jabcdefghijklmnop", 3}
	sealed, err := oldest.Seal(owner, []byte(testToken))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ring.Open(owner, sealed); err != nil {
			b.Fatal(err)
		}
	}
}
