package harness

import (
	"strings"
	"unicode/utf8"
)

// replacementEscape is U+FFFD as a JSON escape: what CleanJSON puts in
// place of what strict JSON readers refuse.
const replacementEscape = `\ufffd`

// CleanJSON returns valid JSON raw with every string made acceptable to
// strict readers (RFC 8259 / I-JSON parsers, PostgreSQL jsonb): invalid
// UTF-8, a lone surrogate escape ("\ud800", "\udc00", or a high surrogate
// not followed by a low one) and NUL ("\u0000") each become U+FFFD.
// Everything else (key order, spacing, other escapes) is kept byte for
// byte, and raw itself comes back when nothing needs changing. Input that
// is not valid JSON is cleaned on a best-effort basis.
func CleanJSON(raw []byte) []byte {
	if !needsCleaning(raw) {
		return raw
	}
	var out []byte // nil until the first change
	last := 0      // raw[last:i] is not yet copied to out
	replace := func(from, to int, with string) {
		if out == nil {
			out = make([]byte, 0, len(raw)+8)
		}
		out = append(out, raw[last:from]...)
		out = append(out, with...)
		last = to
	}
	inString := false
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case !inString:
			if c == '"' {
				inString = true
			}
			if c >= utf8.RuneSelf || c == 0 { // not valid JSON; keep the result UTF-8 at least
				replace(i, i+1, " ")
			}
			i++
		case c == '"':
			inString = false
			i++
		case c == '\\':
			if i+1 < len(raw) && raw[i+1] == 'u' {
				r, ok := hex4(raw, i+2)
				switch {
				case !ok:
					i += 2
				case r == 0, isLowSurrogate(r):
					replace(i, i+6, replacementEscape)
					i += 6
				case isHighSurrogate(r):
					if low, ok := hex4(raw, i+8); ok && i+7 < len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' && isLowSurrogate(low) {
						i += 12 // a well-formed pair
						continue
					}
					replace(i, i+6, replacementEscape)
					i += 6
				default:
					i += 6
				}
				continue
			}
			i += 2
		case c == 0:
			replace(i, i+1, replacementEscape)
			i++
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				replace(i, i+1, replacementEscape)
			}
			i += size
		}
	}
	if out == nil {
		return raw
	}
	return append(out, raw[min(last, len(raw)):]...)
}

// needsCleaning is the fast path: pure ASCII without a \u escape or NUL
// (most harness output) needs nothing.
func needsCleaning(raw []byte) bool {
	for i, c := range raw {
		if c >= utf8.RuneSelf || c == 0 || c == '\\' && i+1 < len(raw) && raw[i+1] == 'u' {
			return true
		}
	}
	return false
}

func hex4(b []byte, at int) (rune, bool) {
	if at < 0 || at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

func isHighSurrogate(r rune) bool { return r >= 0xd800 && r <= 0xdbff }
func isLowSurrogate(r rune) bool  { return r >= 0xdc00 && r <= 0xdfff }

// CleanText makes harness text safe to store and serve: invalid UTF-8 and
// NUL become U+FFFD (a Go string cannot hold a lone surrogate as valid
// UTF-8, so encoding/json never writes one).
func CleanText(text string) string {
	text = strings.ToValidUTF8(text, "\uFFFD")
	if strings.IndexByte(text, 0) >= 0 {
		text = strings.ReplaceAll(text, "\x00", "\uFFFD")
	}
	return text
}
