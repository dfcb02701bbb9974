package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// APIKey is a stored API key: only a SHA-256 hash of the secret is kept, so a
// stolen database or backup does not reveal working keys.
type APIKey struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Hash      []byte     `json:"hash"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// ErrNotFound is returned for a missing record.
var ErrNotFound = errors.New("not found")

// PutAPIKey stores a key record.
func (tx *Tx) PutAPIKey(k APIKey) error {
	doc, err := json.Marshal(k)
	if err != nil {
		return err
	}
	return tx.bucket(bucketAPIKeys).Put([]byte(k.ID), doc)
}

// GetAPIKey returns a key record.
func (tx *Tx) GetAPIKey(id string) (APIKey, error) {
	var k APIKey
	doc := tx.bucket(bucketAPIKeys).Get([]byte(id))
	if doc == nil {
		return k, fmt.Errorf("api key %q: %w", id, ErrNotFound)
	}
	return k, json.Unmarshal(doc, &k)
}

// ListAPIKeys returns every key record in id order.
func (tx *Tx) ListAPIKeys() ([]APIKey, error) {
	var out []APIKey
	err := tx.bucket(bucketAPIKeys).ForEach(func(_, doc []byte) error {
		var k APIKey
		if err := json.Unmarshal(doc, &k); err != nil {
			return err
		}
		out = append(out, k)
		return nil
	})
	return out, err
}
