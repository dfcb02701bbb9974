package harness

import "testing"

func TestEventIDs(t *testing.T) {
	a, b := NewEventID(), NewEventID()
	if a == b || !IsEventID(a) || !IsEventID(b) {
		t.Fatalf("ids %q %q", a, b)
	}
	for _, bad := range []string{"", "sevt_", "sevt_short", "evt_" + a[5:], a + "x", a[:len(a)-1] + "!", "sevt_../../../../../../etc/pa"} {
		if IsEventID(bad) {
			t.Errorf("IsEventID(%q) = true", bad)
		}
	}
}
