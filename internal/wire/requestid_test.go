package wire

import (
	"regexp"
	"testing"
)

// Request ids follow the official alphabet: "req_" and 24 letters or digits,
// no "-" or "_" (which earlier base64url ids had), and do not repeat.
func TestRequestIDAlphabet(t *testing.T) {
	shape := regexp.MustCompile(`^req_[0-9A-Za-z]{24}$`)
	seen := map[string]bool{}
	used := map[byte]bool{}
	for range 2000 {
		id := NewRequestID()
		if !shape.MatchString(id) {
			t.Fatalf("request id %q is not req_ + 24 of [0-9A-Za-z]", id)
		}
		if seen[id] {
			t.Fatalf("request id %q minted twice", id)
		}
		seen[id] = true
		for i := 4; i < len(id); i++ {
			used[id[i]] = true
		}
	}
	// 48 000 draws over 62 symbols: every symbol shows up unless the
	// mapping from random bits to characters is broken.
	if len(used) != 62 {
		t.Errorf("%d of 62 symbols used", len(used))
	}
}
