package projection

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
)

// PlaceholderPrefix starts every placeholder, so a leaked one is easy to
// recognise (and to grep for) and never mistaken for a real key.
const PlaceholderPrefix = "s0d-placeholder-"

// NewPlaceholder returns a fresh opaque placeholder: the prefix and 128
// random bits, so no two sessions or credentials ever share one and a
// harness cannot guess another session's.
func NewPlaceholder() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return PlaceholderPrefix + hex.EncodeToString(b[:])
}

// projected is a credential and the placeholder the harness holds for it.
type projected struct {
	Credential
	placeholder string
}

// Session is one session's credentials as the proxy and the event store
// see them. Placeholders stay the same across turns (Refresh keeps them for
// a credential it has seen), so a harness that wrote one into a config
// file in turn 1 still works in turn 2. Safe for concurrent use.
type Session struct {
	mu          sync.RWMutex
	creds       []projected
	placeholder map[string]string // key(credential) → placeholder
}

// NewSession returns an empty Session; Refresh fills it.
func NewSession() *Session { return &Session{placeholder: map[string]string{}} }

func key(c Credential) string { return c.VaultID + "\x00" + c.ID + "\x00" + c.Name }

// Refresh replaces the session's credentials (a turn reads its vaults
// anew) and returns the environment the harness gets for them: the
// placeholder for a projected credential, the real value for a Raw one.
// Later credentials with the same Name win, as vault order does for env.
func (s *Session) Refresh(creds []Credential) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	env := map[string]string{}
	s.creds = s.creds[:0]
	for _, c := range creds {
		p := projected{Credential: c}
		if c.Raw {
			env[c.Name] = c.Value
		} else {
			k := key(c)
			if s.placeholder[k] == "" {
				s.placeholder[k] = NewPlaceholder()
			}
			p.placeholder = s.placeholder[k]
			env[c.Name] = p.placeholder
		}
		s.creds = append(s.creds, p)
	}
	return env
}

// Projects reports whether any credential is projected (not Raw): such a
// session needs the proxy in its path.
func (s *Session) Projects() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range s.creds {
		if !c.Raw && c.Value != "" {
			return true
		}
	}
	return false
}

// Scoped reports whether some credential may be substituted in requests
// to host: the proxy must see those requests in clear (for HTTPS it
// terminates TLS). Other hosts' traffic is tunnelled untouched.
func (s *Session) Scoped(host string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range s.creds {
		if c.applies(host) {
			return true
		}
	}
	return false
}

// applies says whether c is substituted in requests to host.
func (c projected) applies(host string) bool {
	if c.Raw || c.placeholder == "" || c.Value == "" || !(c.Header || c.Body) {
		return false
	}
	if len(c.Hosts) == 0 {
		return true // networking unrestricted: any host the environment lets it reach
	}
	for _, h := range c.Hosts {
		if HostMatches(h, host) {
			return true
		}
	}
	return false
}

// HostMatches reports whether host is pattern: equal ignoring case, or, for
// a pattern "*.example.com", any name ending in ".example.com".
func HostMatches(pattern, host string) bool {
	pattern, host = strings.ToLower(strings.TrimSuffix(pattern, ".")), strings.ToLower(strings.TrimSuffix(host, "."))
	if suffix, ok := strings.CutPrefix(pattern, "*"); ok && strings.HasPrefix(suffix, ".") {
		return strings.HasSuffix(host, suffix) && len(host) > len(suffix)
	}
	return pattern == host
}

// Substitution is the work one request to one host needs.
type Substitution struct {
	header, body *strings.Replacer
}

// For returns the substitutions of requests to host; the zero value
// changes nothing.
func (s *Session) For(host string) Substitution {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var header, body []string
	for _, c := range s.creds {
		if !c.applies(host) {
			continue
		}
		if c.Header {
			header = append(header, c.placeholder, c.Value)
		}
		if c.Body {
			body = append(body, c.placeholder, c.Value)
		}
	}
	var sub Substitution
	if len(header) > 0 {
		sub.header = strings.NewReplacer(header...)
	}
	if len(body) > 0 {
		sub.body = strings.NewReplacer(body...)
	}
	return sub
}

// Header reports whether the substitution touches headers.
func (sub Substitution) Header() bool { return sub.header != nil }

// Body reports whether the substitution touches bodies.
func (sub Substitution) Body() bool { return sub.body != nil }

// RewriteHeader puts the real values into every header value. Names, the
// request line and the URL are left alone: a secret goes only where its
// injection_location says.
func (sub Substitution) RewriteHeader(h http.Header) {
	if sub.header == nil {
		return
	}
	for name, values := range h {
		for i, v := range values {
			if strings.Contains(v, PlaceholderPrefix) {
				h[name][i] = sub.header.Replace(v)
			}
		}
	}
}

// RewriteBody returns body with the real values in place of placeholders.
func (sub Substitution) RewriteBody(body []byte) []byte {
	if sub.body == nil || !bytes.Contains(body, []byte(PlaceholderPrefix)) {
		return body
	}
	return []byte(sub.body.Replace(string(body)))
}

// Redactor returns a function that replaces every real value of the
// session's credentials (as written and as JSON escapes it) with
// [redacted:NAME], for what a harness prints before it is stored. It reads
// the credentials as they are now; call it again after Refresh.
func (s *Session) Redactor() func([]byte) []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var pairs []string
	for _, c := range s.creds {
		if len(c.Value) < minRedactBytes {
			continue // a one-letter "secret" would shred every event
		}
		mark := "[redacted:" + safeName(c.Name) + "]"
		pairs = append(pairs, c.Value, mark)
		if quoted, err := json.Marshal(c.Value); err == nil {
			if esc := string(quoted[1 : len(quoted)-1]); esc != c.Value {
				pairs = append(pairs, esc, mark)
			}
		}
	}
	if len(pairs) == 0 {
		return func(b []byte) []byte { return b }
	}
	r := strings.NewReplacer(pairs...)
	return func(b []byte) []byte {
		out := r.Replace(string(b))
		if len(out) == len(b) && out == string(b) {
			return b
		}
		return []byte(out)
	}
}

// minRedactBytes is the shortest value redacted: shorter ones are not
// secrets worth the name, and replacing them everywhere would corrupt
// events (and JSON structure) rather than protect anything.
const minRedactBytes = 6

// safeName keeps a name usable inside a JSON string without escaping.
func safeName(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || r == '.' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
			return r
		}
		return '_'
	}, name)
}
