package upstream

import (
	"cmp"
	"slices"
	"strings"
)

// redacted replaces a secret in any text the backend produces.
const redacted = "[redacted]"

// redactor scrubs the secrets of one operation (the daemon's key and the
// decrypted repository tokens) from upstream text before it reaches an
// error message, a log line or a proxied response: an upstream may echo
// what it was sent.
type redactor struct {
	secrets []string
}

func newRedactor(secrets ...string) redactor {
	var keep []string
	for _, s := range secrets {
		if s != "" && !slices.Contains(keep, s) {
			keep = append(keep, s)
		}
	}
	// Longest first, so a secret that contains another is removed whole.
	slices.SortFunc(keep, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return redactor{secrets: keep}
}

func (r redactor) clean(s string) string {
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, redacted)
	}
	return s
}

// excerpt makes one readable line of at most max bytes out of upstream
// text (a message, or a body that is not an error envelope).
func excerpt(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
