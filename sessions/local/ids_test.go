package local

import "testing"

func TestSessionIDsOldAndNewShapes(t *testing.T) {
	id := newID(sessionIDPrefix)
	for i := len(sessionIDPrefix); i < len(id); i++ {
		if c := id[i]; c == '-' || c == '_' {
			t.Fatalf("new id %q has %q: ids must be letters and digits only", id, c)
		}
	}
	for _, ok := range []string{id, "sesn_AbCdEfGhIjKlMnOpQrStUv", "sesn_-bCdEfGhIjKlMnOpQr_tUv"} {
		if !isSessionID(ok) {
			t.Errorf("isSessionID(%q) = false: new and previously minted ids must keep working", ok)
		}
	}
	for _, bad := range []string{"sesn_", "sesn_../../etc/passwd", "sesn_abc", "depl_AbCdEfGhIjKlMnOpQrStUvWx"} {
		if isSessionID(bad) {
			t.Errorf("isSessionID(%q) = true", bad)
		}
	}
}
