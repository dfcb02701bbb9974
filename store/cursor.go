package store

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"
)

// ErrBadCursor is returned for a cursor that is malformed, tampered with, or
// was issued for another listing (another listing, other filters, another
// order, another install).
var ErrBadCursor = errors.New("invalid page cursor")

// Cursors is the one page-token codec of every listing: deployments, runs,
// local sessions and their events. A token is opaque to clients:
//
//	scope fingerprint (8) | payload | HMAC-SHA256 (truncated to 12)
//
// under a per-database secret. The scope names the listing and its canonical
// filters (e.g. "deployments?agent_id=x"), so a cursor from another list,
// other filters or another install is refused instead of misread. What the
// payload holds is the listing's business: a Position for newest-first
// listings, a pivot and a direction for the local session lists.
type Cursors struct{ secret []byte }

// Cursors returns the codec keyed by this database's secret.
func (s *Store) Cursors() *Cursors { return &Cursors{secret: s.cursorSecret} }

const (
	cursorMACLen   = 12
	cursorScopeLen = 8
	maxCursorLen   = 512 // characters of a token accepted at all
)

// Encode returns the token for payload in scope.
func (c *Cursors) Encode(scope string, payload []byte) string {
	body := make([]byte, 0, cursorScopeLen+len(payload)+cursorMACLen)
	body = append(body, fingerprint(scope)...)
	body = append(body, payload...)
	return base64.RawURLEncoding.EncodeToString(append(body, c.mac(body)...))
}

// Decode validates a token issued by Encode for the same scope and returns
// its payload, or ErrBadCursor.
func (c *Cursors) Decode(scope, token string) ([]byte, error) {
	if len(token) > maxCursorLen {
		return nil, ErrBadCursor
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) < cursorScopeLen+cursorMACLen {
		return nil, ErrBadCursor
	}
	body, sum := raw[:len(raw)-cursorMACLen], raw[len(raw)-cursorMACLen:]
	if !hmac.Equal(sum, c.mac(body)) || !hmac.Equal(body[:cursorScopeLen], fingerprint(scope)) {
		return nil, ErrBadCursor
	}
	return body[cursorScopeLen:], nil
}

// EncodePosition is Encode for a place in a newest-first listing.
func (c *Cursors) EncodePosition(scope string, pos Position) string {
	return c.Encode(scope, createdKey(pos.CreatedAt, pos.ID))
}

// DecodePosition is Decode for a token made by EncodePosition.
func (c *Cursors) DecodePosition(scope, token string) (Position, error) {
	payload, err := c.Decode(scope, token)
	if err != nil || len(payload) < 8+1 {
		return Position{}, ErrBadCursor
	}
	created, id := splitCreatedKey(payload)
	return Position{CreatedAt: created, ID: id}, nil
}

func (c *Cursors) mac(body []byte) []byte {
	m := hmac.New(sha256.New, c.secret)
	m.Write(body)
	return m.Sum(nil)[:cursorMACLen]
}

func fingerprint(scope string) []byte {
	sum := sha256.Sum256([]byte(scope))
	return sum[:cursorScopeLen]
}

// Position is a place in a listing: the last item returned.
type Position struct {
	CreatedAt time.Time
	ID        string
}
