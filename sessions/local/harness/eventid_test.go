package harness

import (
	"regexp"
	"testing"
)

func TestEventIDs(t *testing.T) {
	a, b := NewEventID(), NewEventID()
	if a == b || !IsEventID(a) || !IsEventID(b) {
		t.Fatalf("ids %q %q", a, b)
	}
	// The official alphabet: no "-" or "_" after the prefix.
	shape := regexp.MustCompile(`^sevt_[0-9A-Za-z]{24,}$`)
	for range 200 {
		if id := NewEventID(); !shape.MatchString(id) {
			t.Fatalf("event id %q is not sevt_ + 24 of [0-9A-Za-z]", id)
		}
	}
	// Ids of the earlier shape (22 base64url characters) that a harness
	// minted itself are still kept.
	for _, old := range []string{"sevt_-bCdEfGhIjKlMnOpQr_tUv", "sevt_AAAAAAAAAAAAAAAAAAAAAA"} {
		if !IsEventID(old) {
			t.Errorf("IsEventID(%q) = false: previously minted ids must keep working", old)
		}
	}
	for _, bad := range []string{"", "sevt_", "sevt_short", "evt_" + a[5:], a + "x", a[:len(a)-1] + "!", a[:len(a)-1] + "-",
		"sevt_../../../../../../etc/pa", "sevt_../../../../../../etc/passw"} {
		if IsEventID(bad) {
			t.Errorf("IsEventID(%q) = true", bad)
		}
	}
}
