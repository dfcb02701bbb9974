package crypto

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
)

// redacted is what a Secret shows wherever it is printed, logged or encoded.
const redacted = "[redacted]"

// Secret carries a plaintext secret (e.g. an authorization_token) through the
// program without leaking it through fmt, log/slog, encoding/json or any
// TextMarshaler-based encoder: all of them see "[redacted]". Reveal is the only
// way to read the value, which keeps every use greppable.
//
// It is a struct holding a pointer rather than a defined string type on
// purpose: fmt prints a string-kinded field verbatim when it sits in an
// unexported struct field (methods cannot be called there) or under a verb
// such as %d, while a pointer in that position prints as an address.
// The zero value is the empty secret.
type Secret struct {
	value *string
}

// NewSecret wraps a plaintext value.
func NewSecret(plaintext string) Secret {
	return Secret{value: &plaintext}
}

// Reveal returns the plaintext. Call it only where the value leaves the
// process on purpose (sealing it, handing it to a session backend).
func (s Secret) Reveal() string {
	if s.value == nil {
		return ""
	}
	return *s.value
}

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.Reveal() == "" }

// String implements fmt.Stringer.
func (s Secret) String() string { return redacted }

// GoString implements fmt.GoStringer (%#v).
func (s Secret) GoString() string { return redacted }

// Format implements fmt.Formatter so that every verb, including ones that are
// invalid for strings (%d, %x), prints the placeholder.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON implements json.Marshaler: an accidentally echoed secret shows
// the placeholder, never the value.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// MarshalText implements encoding.TextMarshaler for YAML, XML and map keys.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// UnmarshalJSON implements json.Unmarshaler so request types can decode a
// write-only field straight into a Secret. JSON null leaves it unchanged.
func (s *Secret) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	var plaintext string
	if err := json.Unmarshal(data, &plaintext); err != nil {
		// The json error can quote the input; keep only its kind.
		return errors.New("secret must be a JSON string")
	}
	*s = NewSecret(plaintext)
	return nil
}
