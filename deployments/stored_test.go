package deployments

import "testing"

// The render cache trusts a Stored's id only when it was read off a
// document this package wrote; anything else has no id and matches nothing.
func TestStoredIDIsReadOffTheDocument(t *testing.T) {
	st := newStored([]byte(`{"id":"depl_abc","name":"x"}`))
	if st.ID() != "depl_abc" || !st.IsID("depl_abc") || st.IsID("depl_ab") || st.IsID("") {
		t.Fatalf("id of a well-formed document: %q", st.ID())
	}
	if newStored([]byte(`{"id":"depl_x","name":"y"}`)).IDHash() == st.IDHash() {
		t.Fatal("different ids hash alike")
	}
	for _, doc := range []string{``, `{"name":"x","id":"depl_abc"}`, `{"id":"a\"b"}`, `{"id":"no-end`, ` {"id":"x"}`} {
		if s := newStored([]byte(doc)); s.ID() != "" || s.IsID("") || s.IsID("depl_abc") {
			t.Errorf("%s: got id %q, want none", doc, s.ID())
		}
	}
}
