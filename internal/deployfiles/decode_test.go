package deployfiles

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const digestYAML = `name: digest
agent: agent_1
environment_id: env_1
initial_events:
  - {type: user.message, content: [{type: text, text: hi}]}
schedule: {type: cron, expression: "0 9 * * 1-5", timezone: UTC}
`

// writeTree writes files (slash paths relative to the returned directory).
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	}
	return dir
}

func noEnv(string) (string, bool) { return "", false }

func TestDecodeDirKeysSourcesAndOrder(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"b.yaml":                  digestYAML,
		"a/multi.yml":             "---\n" + digestYAML + "---\n# only a comment\n---\nkey: custom\n" + digestYAML + "paused: true\n",
		"a/one.json":              "\n\n{\"name\":\"j\",\"n\":9007199254740993}",
		"README.md":               "not read",
		".git/config.yaml":        "not: read",
		"a/.swap.yaml":            "not: read",
		"..data/b.yaml":           "not: read",
		"c/d/deep.YAML":           digestYAML,
		"empty.yaml":              "# nothing yet\n",
		"a/multi-but-single.yaml": "---\n" + digestYAML + "---\n",
	})
	docs, err := DecodeDir(dir, Options{LookupEnv: noEnv})
	require.NoError(t, err)
	var keys, sources []string
	for _, d := range docs {
		keys = append(keys, d.Key)
		sources = append(sources, d.Source)
	}
	assert.Equal(t, []string{"a/multi-but-single.yaml", "a/multi.yml#0", "custom", "a/one.json", "b.yaml", "c/d/deep.YAML"}, keys)
	assert.Equal(t, []string{"a/multi-but-single.yaml:2", "a/multi.yml:2", "a/multi.yml:11", "a/one.json:3", "b.yaml:1", "c/d/deep.YAML:1"}, sources)

	var custom map[string]any
	require.NoError(t, json.Unmarshal(docs[2].Definition, &custom))
	assert.NotContains(t, custom, "key", "key is not part of the definition")
	assert.Equal(t, true, custom["paused"])
	assert.Contains(t, string(docs[3].Definition), "9007199254740993", "JSON numbers pass as written")
	assert.Contains(t, string(docs[4].Definition), `"expression":"0 9 * * 1-5"`)
}

func TestDecodeDirEmptyIsEmptyNotNil(t *testing.T) {
	docs, err := DecodeDir(t.TempDir(), Options{})
	require.NoError(t, err)
	require.NotNil(t, docs)
	b, _ := json.Marshal(docs)
	assert.Equal(t, "[]", string(b))
}

func TestDecodeDirTokens(t *testing.T) {
	repo := func(ref string) string {
		return digestYAML + "resources:\n  - type: github_repository\n    url: https://github.com/o/r\n    " + ref + "\n"
	}
	dir := writeTree(t, map[string]string{
		"team/file.yaml":   repo("authorization_token_file: ../secrets/gh"),
		"env.yaml":         repo("authorization_token_env: GH_TOKEN"),
		"plain.yaml":       repo("authorization_token: inline"),
		"secrets/gh":       "ghp_fromfile\n",
		"secrets/ignored":  "x",
		"norepo/none.yaml": digestYAML,
	})
	env := func(name string) (string, bool) {
		return map[string]string{"GH_TOKEN": "ghp_fromenv"}[name], name == "GH_TOKEN"
	}
	docs, err := DecodeDir(dir, Options{LookupEnv: env})
	require.NoError(t, err)
	want := map[string]string{"team/file.yaml": "ghp_fromfile", "env.yaml": "ghp_fromenv", "plain.yaml": "inline"}
	for _, d := range docs {
		var def struct {
			Resources []map[string]any `json:"resources"`
		}
		require.NoError(t, json.Unmarshal(d.Definition, &def))
		if d.Key == "norepo/none.yaml" {
			assert.Empty(t, def.Resources)
			continue
		}
		require.Len(t, def.Resources, 1, d.Key)
		assert.Equal(t, want[d.Key], def.Resources[0]["authorization_token"], d.Key)
		assert.NotContains(t, def.Resources[0], "authorization_token_file")
		assert.NotContains(t, def.Resources[0], "authorization_token_env")
	}
}

func TestDecodeDirRefusals(t *testing.T) {
	repo := func(ref string) string {
		return digestYAML + "resources:\n  - type: github_repository\n    url: https://github.com/o/r\n    " + ref + "\n"
	}
	cases := []struct {
		name  string
		files map[string]string
		// want is the whole message: file, line, document, field, reason.
		want string
	}{
		{"duplicate key across files",
			map[string]string{"a.yaml": "key: k\n" + digestYAML, "b/c.yaml": digestYAML + "key: k\n"},
			`b/c.yaml:1: key: "k" is also the key of the document at a.yaml:1; keys must be unique in the directory: give one of them another ` + "`key:`"},
		{"explicit key equal to a default one",
			map[string]string{"a.yaml": digestYAML, "b.yaml": "key: a.yaml\n" + digestYAML},
			`b.yaml:1: key: "a.yaml" is also the key of the document at a.yaml:1; keys must be unique in the directory: give one of them another ` + "`key:`"},
		{"missing env",
			map[string]string{"x.yaml": repo("authorization_token_env: NOPE_TOKEN")},
			"x.yaml:10: resources[0].authorization_token_env: environment variable NOPE_TOKEN is not set: export it before applying, or use authorization_token_file"},
		{"two token sources",
			map[string]string{"x.yaml": repo("authorization_token: a\n    authorization_token_env: B")},
			"x.yaml:8: resources[0].authorization_token: give only one of authorization_token, authorization_token_file and authorization_token_env"},
		{"missing token file",
			map[string]string{"x.yaml": repo("authorization_token_file: gone")},
			"x.yaml:10: resources[0].authorization_token_file: cannot read DIR/gone: no such file or directory"},
		{"empty token file",
			map[string]string{"x.yaml": repo("authorization_token_file: tok"), "tok": "\n"},
			"x.yaml:10: resources[0].authorization_token_file: DIR/tok is empty: write the token into it"},
		{"bad key",
			map[string]string{"x.yaml": digestYAML + "key: 7\n"},
			"x.yaml:7: key: must be a non-empty string of at most 256 bytes without control characters (or leave it out: the key is then the file path)"},
		{"bad paused in second document",
			map[string]string{"x.yaml": digestYAML + "---\n" + digestYAML + "paused: sometimes\n"},
			"x.yaml:14 (document #1): paused: must be true or false (or leave it out: the deployment's pause state is then left as it is)"},
		{"not a mapping",
			map[string]string{"x.yaml": "- a\n- b\n"},
			"x.yaml:1: must be a mapping of deployment fields (name, agent, environment_id, initial_events, ...), not a list"},
		{"converter error keeps its field path",
			map[string]string{"x.yaml": digestYAML + "---\nname: a\nname: b\n"},
			"x.yaml:8 (document #1): name: line 9: key appears twice"},
		{"bad yaml",
			map[string]string{"x.yaml": "name: [unclosed\n"},
			"x.yaml: not valid YAML: yaml: line 1: did not find expected ',' or ']'"},
		{"json duplicate key",
			map[string]string{"x.json": `{"name":"a","name":"b"}`},
			`x.json:1: name: duplicate key; a JSON object may name each key once: send "name" once`},
		{"json two values",
			map[string]string{"x.json": `{"name":"a"} {"name":"b"}`},
			"x.json:1: holds more than one JSON value: a .json file holds one deployment object (use YAML with --- for several)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTree(t, tc.files)
			_, err := DecodeDir(dir, Options{LookupEnv: noEnv})
			require.Error(t, err)
			var de *Error
			require.True(t, errors.As(err, &de), "a *deployfiles.Error: %v", err)
			got := err.Error()
			if abs, e := filepath.Abs(dir); e == nil {
				got = strings.ReplaceAll(got, abs, "DIR")
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestDecodeDirNeverPrintsATokenValue(t *testing.T) {
	// A token file that is too large, and a neighbouring bad field: no
	// message may contain the secret.
	secret := "ghp_SECRETSECRET"
	dir := writeTree(t, map[string]string{
		"x.yaml": digestYAML + "resources:\n  - type: github_repository\n    url: https://github.com/o/r\n    authorization_token: " + secret + "\n    authorization_token_env: " + secret + "\n",
	})
	_, err := DecodeDir(dir, Options{LookupEnv: noEnv})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), secret)
}

func TestDecodeDirNotADirectory(t *testing.T) {
	dir := writeTree(t, map[string]string{"f.yaml": digestYAML})
	_, err := DecodeDir(filepath.Join(dir, "f.yaml"), Options{})
	require.ErrorContains(t, err, "is not a directory")
	_, err = DecodeDir(filepath.Join(dir, "missing"), Options{})
	require.ErrorContains(t, err, "cannot read the deployments directory: no such file or directory")
}
