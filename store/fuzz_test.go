package store

import (
	"path/filepath"
	"testing"
	"time"
)

// Cursors come from clients: any string decodes to a position issued by this
// store for this scope, or to ErrBadCursor — never a panic, never a position
// for another scope.
func FuzzDecodeCursor(f *testing.F) {
	st, err := Open(filepath.Join(f.TempDir(), "db"), Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	c := st.Cursors()
	good := c.EncodePosition("deployments?", Position{CreatedAt: time.Unix(1700000000, 5), ID: "depl_x"})
	for _, s := range []string{good, "", "garbage", good[:len(good)-2], good + "A", "%%%", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		pos, err := c.DecodePosition("deployments?", token)
		if err != nil {
			if err != ErrBadCursor {
				t.Fatalf("unexpected error type %v", err)
			}
			return
		}
		// Only a token this store issued for this scope decodes.
		if c.EncodePosition("deployments?", pos) != token {
			t.Fatalf("decoded a token the store did not issue: %q", token)
		}
		if _, err := c.DecodePosition("deployment_runs?", token); err == nil {
			t.Fatalf("a cursor decoded in another scope")
		}
	})
}
