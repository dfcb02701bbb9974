package harness

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCleanJSON(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`{"type":"x","text":"plain"}`, `{"type":"x","text":"plain"}`},
		{`{"text":"a\ud800b"}`, `{"text":"a\ufffdb"}`},
		{`{"text":"a\udc00b"}`, `{"text":"a\ufffdb"}`},
		{`{"text":"\ud83d\ude00 ok"}`, `{"text":"\ud83d\ude00 ok"}`},
		{`{"text":"\ud800\ud83d\ude00"}`, `{"text":"\ufffd\ud83d\ude00"}`},
		{`{"text":"end\ud800"}`, `{"text":"end\ufffd"}`},
		{`{"text":"a\u0000b","\u0000":1}`, `{"text":"a\ufffdb","\ufffd":1}`},
		{`{"text":"\\u0000 is escaped text"}`, `{"text":"\\u0000 is escaped text"}`},
		{"{\"text\":\"bad \xff\xfe byte\"}", `{"text":"bad \ufffd\ufffd byte"}`},
		{`{"text":"é ∑ \u00e9"}`, `{"text":"é ∑ \u00e9"}`},
		{`{ "a" : [ 1 , "\u0000" ] }`, `{ "a" : [ 1 , "\ufffd" ] }`},
	} {
		got := CleanJSON([]byte(tt.in))
		assert.Equal(t, tt.want, string(got), tt.in)
		assert.True(t, json.Valid(got), tt.in)
		assert.True(t, strictJSON(got), tt.in)
	}
	same := []byte(`{"type":"x","text":"ascii only"}`)
	assert.Same(t, &same[0], &CleanJSON(same)[0], "clean input is returned as is")
}

func TestCleanText(t *testing.T) {
	assert.Equal(t, "a\uFFFDb\uFFFDc", CleanText("a\x00b\xffc"))
	assert.Equal(t, "plain é", CleanText("plain é"))
}

// strictJSON reports whether every \u escape in data is a well-formed
// non-NUL code point (a surrogate only as a high-low pair) and data is
// valid UTF-8: what strict readers require beyond json.Valid.
func strictJSON(data []byte) bool {
	if !utf8.Valid(data) || bytes.IndexByte(data, 0) >= 0 {
		return false
	}
	inString := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if !inString {
			inString = c == '"'
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			if data[i+1] != 'u' {
				i++
				continue
			}
			r, _ := hex4(data, i+2)
			switch {
			case r == 0, isLowSurrogate(r):
				return false
			case isHighSurrogate(r):
				low, ok := hex4(data, i+8)
				if !ok || data[i+6] != '\\' || data[i+7] != 'u' || !isLowSurrogate(low) {
					return false
				}
				i += 11
				continue
			}
			i += 5
		}
	}
	return true
}

// decodeNormalized decodes data the way encoding/json does (which already
// turns lone surrogates and invalid UTF-8 into U+FFFD) and maps NUL to
// U+FFFD, which is what CleanJSON must amount to.
func decodeNormalized(t *testing.T, data []byte) any {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v))
	var norm func(any) any
	norm = func(v any) any {
		switch v := v.(type) {
		case string:
			return strings.ReplaceAll(v, "\x00", "\uFFFD")
		case []any:
			for i := range v {
				v[i] = norm(v[i])
			}
		case map[string]any:
			out := make(map[string]any, len(v))
			for k, e := range v {
				out[strings.ReplaceAll(k, "\x00", "\uFFFD")] = norm(e)
			}
			return out
		}
		return v
	}
	return norm(v)
}

func FuzzCleanJSON(f *testing.F) {
	for _, seed := range []string{
		`{"type":"agent.message","content":[{"type":"text","text":"hi"}]}`,
		`{"text":"a\ud800b"}`, `{"text":"\udfff"}`, `{"text":"\ud83d\ude00"}`, `{"t":"\ud800\ud800\udc00"}`,
		`{"text":"a\u0000b"}`, `"\u0000"`, `["\\u0000","\\\ud800"]`, "{\"x\":\"\xff\xc3\"}",
		`{"a":{"b":[1,2.5e3,true,null,"\u00e9\u2028"]}}`, `"\uD800\uDC00"`, `"\uDBFF"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out := CleanJSON(in)
		if !json.Valid(in) {
			return // harness lines that are not JSON go the text path
		}
		require.True(t, json.Valid(out), "%q -> %q", in, out)
		require.True(t, strictJSON(out), "%q -> %q", in, out)
		require.Equal(t, out, CleanJSON(out), "not idempotent: %q", in)
		require.Equal(t, decodeNormalized(t, in), decodeNormalized(t, out), "%q -> %q", in, out)
		if strictJSON(in) {
			require.Equal(t, in, out, "strict input changed")
		}
	})
}
