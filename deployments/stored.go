package deployments

import (
	"context"
	"hash/maphash"

	"github.com/sandbox0/sandbox0d/store"
)

// Stored is a deployment document as read from the store, not yet decoded,
// with a revision that changes whenever the document does. Reads that can
// answer from something cached per revision (the API's rendered JSON) skip
// decoding the document at all.
type Stored struct {
	// Rev is a 64-bit hash of the stored document. Every change to a
	// deployment (update, pause, a fire's last_run_at, …) rewrites its
	// document and so changes Rev; equal Revs mean the same document.
	Rev uint64
	id  []byte // the id, read off the document (same lifetime as doc)
	doc []byte
}

// revSeed is per process: revisions are only compared within one process.
var revSeed = maphash.MakeSeed()

func newStored(doc []byte) Stored {
	return Stored{Rev: maphash.Bytes(revSeed, doc), id: docID(doc), doc: doc}
}

// ID returns the deployment's id ("" if the document does not start with
// one). It allocates; IsID does not.
func (st Stored) ID() string { return string(st.id) }

// IsID reports whether the deployment's id is id, without allocating.
func (st Stored) IsID(id string) bool { return len(st.id) > 0 && string(st.id) == id }

// IDHash is a hash of the id for keying caches by deployment without
// allocating the id; equal ids have equal hashes within one process.
func (st Stored) IDHash() uint64 { return maphash.Bytes(revSeed, st.id) }

// Decode decodes the document.
func (st Stored) Decode() (*Deployment, error) { return decodeDeployment(st.doc) }

// ViewStored hands fn a deployment's stored document without decoding or
// copying it: fn runs inside the read transaction and must not keep the
// document (or its Decode's input) after returning — Decode copies what it
// keeps. A retrieve answered from the render cache then costs no copy.
func (s *Service) ViewStored(_ context.Context, id string, fn func(Stored) error) error {
	return s.store.View(func(tx *store.Tx) error {
		doc := tx.ViewDeployment(id)
		if doc == nil {
			return notFound("deployment %q not found", id)
		}
		return fn(newStored(doc))
	})
}

// EachStored reads one page of a listing without decoding it: fn gets each
// stored document in order, inside the read transaction, and must not keep
// it (or its Decode's input) after returning — Decode copies what it keeps.
// It returns the next page's token.
func (s *Service) EachStored(_ context.Context, q ListQuery, fn func(Stored) error) (string, error) {
	return s.listDocs(q, func(doc []byte) error { return fn(newStored(doc)) })
}

// docID reads the id off the front of a stored document: Deployment's first
// field is its id and ids never need escaping, so a stored document always
// starts {"id":"…". A document that does not (never written by this
// package) gets no id, which no cache entry matches. The result is a view
// into doc.
func docID(doc []byte) []byte {
	const head = `{"id":"`
	if len(doc) < len(head) || string(doc[:len(head)]) != head {
		return nil
	}
	rest := doc[len(head):]
	for i, c := range rest {
		switch {
		case c == '"':
			return rest[:i]
		case c == '\\' || c < ' ':
			return nil
		}
	}
	return nil
}
