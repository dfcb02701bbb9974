package deployfiles

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzDecodeFile: whatever a file holds, decoding does not panic, fails
// only with a located *Error, and when it succeeds every definition is a
// JSON object without `key` or token references, with a key and a source.
func FuzzDecodeFile(f *testing.F) {
	seeds := []string{
		digestYAML,
		digestYAML + "---\nkey: k2\n" + digestYAML + "paused: false\n",
		"---\n---\n",
		"key: [1]\n",
		"a: &a [x, x]\nb: [*a, *a]\n",
		"base: &b {k: v}\nc:\n  <<: *b\n",
		digestYAML + "resources:\n  - {type: github_repository, url: 'https://x/y', authorization_token_env: T}\n",
		digestYAML + "resources:\n  - {type: github_repository, url: 'https://x/y', authorization_token_file: /nonexistent}\n",
		"{\"name\": \"j\", \"n\": 1e400}",
		"- 1\n- 2\n",
		"n: .inf\n",
		"? [a]\n: b\n",
		"\t bad: indent",
	}
	for _, s := range seeds {
		f.Add(s, false)
		f.Add(s, true)
	}
	env := func(name string) (string, bool) { return "tok", name == "T" }
	f.Fuzz(func(t *testing.T, text string, asJSON bool) {
		name := "dir/f.yaml"
		if asJSON {
			name = "dir/f.json"
		}
		docs, err := DecodeFile(name, []byte(text), t.TempDir(), Options{LookupEnv: env})
		if err != nil {
			var de *Error
			if !errors.As(err, &de) || de.File != name {
				t.Fatalf("error not located in %s: %v", name, err)
			}
			return
		}
		for _, d := range docs {
			if d.Key == "" || !strings.HasPrefix(d.Source, name+":") {
				t.Fatalf("document without key or source: %+v", d)
			}
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(d.Definition, &obj); err != nil || obj == nil {
				t.Fatalf("definition is not a JSON object: %s (%v)", d.Definition, err)
			}
			if _, has := obj["key"]; has {
				t.Fatalf("key left in the definition: %s", d.Definition)
			}
			if strings.Contains(string(d.Definition), `"authorization_token_env"`) || strings.Contains(string(d.Definition), `"authorization_token_file"`) {
				// Only resources[i] references are resolved; elsewhere they
				// pass through for the daemon to refuse as unknown fields.
				var def struct {
					Resources []map[string]json.RawMessage `json:"resources"`
				}
				if json.Unmarshal(d.Definition, &def) == nil {
					for _, r := range def.Resources {
						if r[tokenEnvField] != nil || r[tokenFileField] != nil {
							t.Fatalf("unresolved token reference in a resource: %s", d.Definition)
						}
					}
				}
			}
		}
	})
}
