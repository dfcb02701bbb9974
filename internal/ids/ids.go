// Package ids mints object ids in the official Managed Agents alphabet: a
// prefix, an underscore, then Length characters of [0-9A-Za-z]. Letters and
// digits only, so a terminal double-click selects the whole id and no id
// can look like a flag after its prefix.
package ids

import (
	"crypto/rand"
	"strings"
)

// Length is the number of random characters after the prefix. Each is
// uniform over 62 symbols, so an id carries 24·log2(62) ≈ 142.9 random bits.
const Length = 24

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// New returns prefix + "_" + Length random alphanumeric characters.
func New(prefix string) string {
	var sb strings.Builder
	sb.Grow(len(prefix) + 1 + Length)
	sb.WriteString(prefix)
	sb.WriteByte('_')
	var buf [2 * Length]byte
	for n := 0; n < Length; {
		_, _ = rand.Read(buf[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
		for _, b := range buf {
			// Rejection sampling: 248 = 4·62, so b%62 is uniform for b < 248.
			if b >= 248 || n == Length {
				continue
			}
			sb.WriteByte(alphabet[b%62])
			n++
		}
	}
	return sb.String()
}

// IsNew reports whether id is prefix_ followed by exactly Length characters
// of the alphabet, the shape New mints.
func IsNew(prefix, id string) bool {
	rest, ok := strings.CutPrefix(id, prefix+"_")
	if !ok || len(rest) != Length {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if !isAlnum(rest[i]) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
}
