package store

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
)

// ErrBadCursor is returned for a cursor that is malformed, tampered with, or
// was issued for another listing (another kind or other filters).
var ErrBadCursor = errors.New("invalid page cursor")

// Cursors are opaque to clients: kind byte | filter fingerprint (8) |
// created (8) | id, followed by a truncated HMAC under a per-database secret
// so a cursor from another list, other filters or another install is refused.

const cursorMACLen = 12

// EncodeCursor returns the next_page token for a position in a listing.
// scope names the listing and its filters (e.g. "deployments?agent_id=x").
func (s *Store) EncodeCursor(scope string, pos Position) string {
	body := make([]byte, 0, 16+len(pos.ID))
	body = append(body, fingerprint(scope)...)
	body = append(body, timeKey(pos.CreatedAt)...)
	body = append(body, pos.ID...)
	return base64.RawURLEncoding.EncodeToString(append(body, s.mac(body)...))
}

// DecodeCursor validates a token issued by EncodeCursor for the same scope.
func (s *Store) DecodeCursor(scope, token string) (Position, error) {
	if len(token) > 512 {
		return Position{}, ErrBadCursor
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) < 16+1+cursorMACLen {
		return Position{}, ErrBadCursor
	}
	body, sum := raw[:len(raw)-cursorMACLen], raw[len(raw)-cursorMACLen:]
	if !hmac.Equal(sum, s.mac(body)) {
		return Position{}, ErrBadCursor
	}
	if !hmac.Equal(body[:8], fingerprint(scope)) {
		return Position{}, ErrBadCursor
	}
	return Position{CreatedAt: timeFromKey(body[8:16]), ID: string(body[16:])}, nil
}

func (s *Store) mac(body []byte) []byte {
	m := hmac.New(sha256.New, s.cursorSecret)
	m.Write(body)
	return m.Sum(nil)[:cursorMACLen]
}

func fingerprint(scope string) []byte {
	sum := sha256.Sum256([]byte(scope))
	return sum[:8]
}
