package store

import (
	"bytes"
	"time"
)

// Idempotency records are opaque documents (the answer's status and body,
// owned by internal/idempotency) keyed by caller scope and Idempotency-Key,
// with a creation index so expiry walks keys in time order and never decodes
// a document. Scopes and keys are printable ASCII, so NUL separates them.

// IdempotencyRef names one record.
type IdempotencyRef struct {
	Scope, Key string
	Created    time.Time
}

func idempotencyKey(scope, key string) []byte { return prefixed(scope, []byte(key)) }

// GetIdempotency returns the document stored for scope and key, and when it
// was stored; ok is false when there is none.
func (tx *Tx) GetIdempotency(scope, key string) (doc []byte, ok bool) {
	v := tx.bucket(bucketIdempotency).Get(idempotencyKey(scope, key))
	if v == nil {
		return nil, false
	}
	return append([]byte(nil), v...), true
}

// PutIdempotency stores (or replaces, dropping the old index entry) the
// document for scope and key, created at created.
func (tx *Tx) PutIdempotency(scope, key string, created, previous time.Time, doc []byte) error {
	k := idempotencyKey(scope, key)
	if !previous.IsZero() {
		if err := tx.bucket(bucketIdempotencyByCreated).Delete(createdKey(previous, string(k))); err != nil {
			return err
		}
	}
	if err := tx.bucket(bucketIdempotency).Put(k, doc); err != nil {
		return err
	}
	return tx.bucket(bucketIdempotencyByCreated).Put(createdKey(created, string(k)), nil)
}

// IdempotencyOlderThan returns up to limit records created before cutoff,
// oldest first (index keys only).
func (tx *Tx) IdempotencyOlderThan(cutoff time.Time, limit int) []IdempotencyRef {
	var out []IdempotencyRef
	c := tx.bucket(bucketIdempotencyByCreated).Cursor()
	for k, _ := c.First(); k != nil && len(out) < limit; k, _ = c.Next() {
		created, rest := splitCreatedKey(k)
		if !created.Before(cutoff) {
			break
		}
		scope, key, _ := bytes.Cut([]byte(rest), []byte{0})
		out = append(out, IdempotencyRef{Scope: string(scope), Key: string(key), Created: created})
	}
	return out
}

// DeleteIdempotency removes a record and its index entry. A ref whose index
// entry is gone (the key was stored again since it was listed) deletes
// nothing, so a prune never drops a newer answer.
func (tx *Tx) DeleteIdempotency(ref IdempotencyRef) error {
	k := idempotencyKey(ref.Scope, ref.Key)
	idx := createdKey(ref.Created, string(k))
	byCreated := tx.bucket(bucketIdempotencyByCreated)
	if k, _ := byCreated.Cursor().Seek(idx); !bytes.Equal(k, idx) {
		return nil
	}
	if err := byCreated.Delete(idx); err != nil {
		return err
	}
	return tx.bucket(bucketIdempotency).Delete(k)
}
