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
	ID string
	// Rev is a 64-bit hash of the stored document. Every change to a
	// deployment (update, pause, a fire's last_run_at, …) rewrites its
	// document and so changes Rev; equal Revs mean the same document.
	Rev uint64
	doc []byte
}

// revSeed is per process: revisions are only compared within one process.
var revSeed = maphash.MakeSeed()

func newStored(id string, doc []byte) Stored {
	return Stored{ID: id, Rev: maphash.Bytes(revSeed, doc), doc: doc}
}

// Decode decodes the document.
func (st Stored) Decode() (*Deployment, error) { return decodeDeployment(st.doc) }

// GetStored returns a deployment's stored document without decoding it.
func (s *Service) GetStored(_ context.Context, id string) (Stored, error) {
	var st Stored
	err := s.store.View(func(tx *store.Tx) error {
		doc := tx.GetDeployment(id)
		if doc == nil {
			return notFound("deployment %q not found", id)
		}
		st = newStored(id, doc)
		return nil
	})
	return st, err
}

// EachStored reads one page of a listing without decoding it: fn gets each
// stored document in order, inside the read transaction, and must not keep
// it (or its Decode's input) after returning — Decode copies what it keeps.
// It returns the next page's token.
func (s *Service) EachStored(_ context.Context, q ListQuery, fn func(Stored) error) (string, error) {
	return s.listDocs(q, func(doc []byte) error { return fn(newStored(docID(doc), doc)) })
}

// docID reads the id off the front of a stored document: Deployment's first
// field is its id and ids never need escaping, so a stored document always
// starts {"id":"…". A document that does not (never written by this
// package) gets the empty id, which no cache entry matches.
func docID(doc []byte) string {
	const head = `{"id":"`
	if len(doc) < len(head) || string(doc[:len(head)]) != head {
		return ""
	}
	rest := doc[len(head):]
	for i, c := range rest {
		switch {
		case c == '"':
			return string(rest[:i])
		case c == '\\' || c < ' ':
			return ""
		}
	}
	return ""
}
