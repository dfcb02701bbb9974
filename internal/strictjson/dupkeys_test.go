package strictjson

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDuplicateKeysNamedByPath(t *testing.T) {
	cases := []struct{ in, path, key string }{
		{`{"name":"x","name":"y"}`, "name", "name"},
		{`{"metadata":{"team":"a","other":1,"team":"b"}}`, "metadata.team", "team"},
		{`{"resources":[{"url":"a"},{"url":"b","url":"c"}]}`, "resources[1].url", "url"},
		{`{"a":[[1,2],[{"b":{"c":0,"c":1}}]]}`, "a[1][0].b.c", "c"},
		{`[{"k":1},{"k":2,"k":3}]`, "[1].k", "k"},
		// A key equal to an earlier nested key is no duplicate, and a later
		// sibling object gets its own set.
		{`{"x":{"y":1},"y":{"y":{"y":2}},"z":{"z":1,"z":2}}`, "z.z", "z"},
		// Escapes are compared decoded: both are "ab".
		{`{"ab":1,"a\u0062":2}`, "ab", "ab"},
	}
	for _, c := range cases {
		err := CheckDuplicateKeys([]byte(c.in))
		var dup *DuplicateKeyError
		require.True(t, errors.As(err, &dup), "%s: got %v", c.in, err)
		assert.Equal(t, c.path, dup.Path, c.in)
		assert.Equal(t, c.key, dup.Key, c.in)
		assert.Contains(t, err.Error(), c.path+": duplicate key", c.in)
	}
}

func TestNoDuplicateNoError(t *testing.T) {
	for _, in := range []string{
		`{}`, `[]`, `null`, `1`, `"s"`, ``,
		`{"name":"x","Name":"y"}`, // case differs: two keys (metadata keys are case-sensitive)
		`{"a":{"b":1},"b":{"a":1},"c":[{"a":1},{"a":1}]}`,
		`{"a":"{\"b\":1,\"b\":2}"}`, // a duplicate inside a string is text
		`{"a":1,`,                   // a syntax error is the route decoder's to word
		`{"a" 1, "a": 2}`,
	} {
		assert.NoError(t, CheckDuplicateKeys([]byte(in)), in)
	}
}

// colons counts the ':' outside strings: in valid JSON, one per object key.
func colons(data []byte) int {
	n, inString, escaped := 0, false, false
	for _, c := range data {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && c == ':':
			n++
		}
	}
	return n
}

// keys counts the object keys that survive decoding (duplicates collapse).
func keys(v any) int {
	switch v := v.(type) {
	case map[string]any:
		n := len(v)
		for _, e := range v {
			n += keys(e)
		}
		return n
	case []any:
		n := 0
		for _, e := range v {
			n += keys(e)
		}
		return n
	}
	return 0
}

// FuzzCheckDuplicateKeys holds the checker to an independent reference on
// valid JSON: a document has a duplicate key exactly when decoding it loses
// keys (fewer keys in the decoded value than key separators in the text).
func FuzzCheckDuplicateKeys(f *testing.F) {
	for _, s := range []string{
		`{"name":"x","name":"y"}`, `{"metadata":{"team":"a","team":"b"}}`, `[{"a":1},{"a":1}]`,
		`{"a":"x:y","b":{"c":[1,{"d":null,"e":true}]}}`, `{"\u0061":1,"a":2}`, `{"a\"":1,"a\\":2}`,
		`{"":1,"":2}`, `1`, `"::"`, `{"a":{"a":{"a":{}}}}`, `{"a":[],"b":[[[]]]}`, `{"k":1}{"k":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := CheckDuplicateKeys(data)
		var v any
		if err != nil {
			var dup *DuplicateKeyError
			require.True(t, errors.As(err, &dup), "only duplicate keys are reported, got %v", err)
		}
		if !json.Valid(data) || json.Unmarshal(data, &v) != nil {
			return
		}
		lost := colons(data) != keys(v)
		assert.Equal(t, lost, err != nil, "duplicate keys in %q: reference %v, checker %v", data, lost, err)
	})
}

// A create-deployment body of the size the API sees (about 1 KiB).
var benchBody = []byte(`{"name":"daily-digest","description":"Summarise yesterday","agent":{"type":"agent","id":"agent_a","version":2},
"environment_id":"env_1","initial_events":[{"type":"user.message","content":[{"type":"text","text":"Summarise yesterday's commits and open issues"}]}],
"resources":[{"type":"github_repository","url":"https://github.com/acme/repo","authorization_token":"ghp_x","checkout":{"type":"branch","name":"main"}}],
"vault_ids":["vlt_1","vlt_2"],"metadata":{"team":"infra","owner":"ops","tier":"1"},
"schedule":{"type":"cron","expression":"0 9 * * 1-5","timezone":"Europe/Berlin"}}`)

func BenchmarkCheckDuplicateKeys(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	for b.Loop() {
		if err := CheckDuplicateKeys(benchBody); err != nil {
			b.Fatal(err)
		}
	}
}
