package ids

import (
	"regexp"
	"testing"
)

func TestNewIsAlphanumericAndUnique(t *testing.T) {
	shape := regexp.MustCompile(`^depl_[0-9A-Za-z]{24}$`)
	seen := map[string]bool{}
	counts := map[byte]int{}
	for range 20000 {
		id := New("depl")
		if !shape.MatchString(id) {
			t.Fatalf("%q is not prefix + 24 alphanumerics", id)
		}
		if !IsNew("depl", id) {
			t.Fatalf("IsNew(%q) = false", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
		for i := len("depl_"); i < len(id); i++ {
			counts[id[i]]++
		}
	}
	// 480,000 characters over 62 symbols: ~7742 each. A biased sampler
	// (plain b%62 over 256 values) gives the first 8 symbols ~25% more.
	if len(counts) != 62 {
		t.Fatalf("only %d distinct symbols used", len(counts))
	}
	for c, n := range counts {
		if n < 7000 || n > 8500 {
			t.Errorf("symbol %q drawn %d times, expected about 7742", c, n)
		}
	}
}

func TestIsNewRejectsOtherShapes(t *testing.T) {
	for _, id := range []string{
		"depl_", "depl_abc", "sesn_" + New("x")[2:], "depl_-AAAAAAAAAAAAAAAAAAAAAAA",
		"depl_AAAAAAAAAAAAAAAAAAAAAA_A", "depl_AAAAAAAAAAAAAAAAAAAAAAAAA",
	} {
		if IsNew("depl", id) {
			t.Errorf("IsNew(%q) = true", id)
		}
	}
}
