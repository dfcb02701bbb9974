package deployfiles

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestYAMLToJSON(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"scalars", "a: 1\nb: 1.5\nc: true\nd: null\ne: ~\nf: text\ng: '2'", `{"a":1,"b":1.5,"c":true,"d":null,"e":null,"f":"text","g":"2"}`},
		{"dates stay text", "at: 2026-01-01\nts: 2026-01-01T09:00:00Z", `{"at":"2026-01-01","ts":"2026-01-01T09:00:00Z"}`},
		{"yaml 1.1 words stay text", "a: yes\nb: off", `{"a":"yes","b":"off"}`},
		{"octal-looking stays number", "n: 0o17", `{"n":15}`},
		{"nesting", "x:\n  - {k: v}\n  - [1, 2]", `{"x":[{"k":"v"},[1,2]]}`},
		{"anchors", "base: &b {k: v}\ncopy: *b", `{"base":{"k":"v"},"copy":{"k":"v"}}`},
		{"block text", "t: |\n  line 1\n  line 2\n", `{"t":"line 1\nline 2\n"}`},
		{"big int kept exact", "n: 9007199254740993", `{"n":9007199254740993}`},
		{"beyond int64 kept as written", "n: 99999999999999999999", `{"n":99999999999999999999}`},
		{"hex decoded", "n: 0x1F", `{"n":31}`},
		{"yaml-only float decoded", "n: .5", `{"n":0.5}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := YAMLToJSON([]byte(tc.yaml))
			require.NoError(t, err)
			assert.JSONEq(t, tc.want, string(got))
			if strings.Contains(tc.name, "kept") {
				_, digits, _ := strings.Cut(tc.want, ":")
				assert.Contains(t, string(got), strings.TrimSuffix(digits, "}"), "exact digits")
			}
		})
	}
}

func TestYAMLToJSONRejects(t *testing.T) {
	deep := strings.Repeat("- ", 80) + "x"
	laughs := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, name := range []string{"b", "c", "d", "e", "f", "g"} {
		laughs += name + ": &" + name + " [" + strings.Repeat("*"+prev+", ", 9) + "*" + prev + "]\n"
		prev = name
	}
	cases := []struct{ name, yaml, message string }{
		{"duplicate key", "a: 1\nb: 2\na: 3", "a: line 3: key appears twice"},
		{"merge key", "base: &b {k: v}\nc:\n  <<: *b", "merge keys"},
		{"complex key", "? [a, b]\n: v", "keys must be plain strings"},
		{"infinity", "n: .inf", "has no JSON equivalent"},
		{"two documents", "a: 1\n---\na: 2", "more than one YAML document"},
		{"too deep", deep, "nested more than 64 levels"},
		{"alias bomb", laughs, "values after expanding aliases"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := YAMLToJSON([]byte(tc.yaml))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.message)
		})
	}
}

// The size check before conversion refuses exactly what the converter's own
// budget refuses, naming the same value (checked with a small budget, on
// bombs of sequences, mappings and nested aliases, and on documents that
// just fit).
func TestExpandedSizeCheckAgreesWithTheConverter(t *testing.T) {
	docs := []string{
		"a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b, *b]",
		"- &a {k: [1, 2, 3], l: v}\n- [*a, *a, *a]\n- {m: *a, n: [*a, *a]}\n- tail",
		"top:\n  list: &l [a, b, c, d]\n  more: {x: *l, y: *l, z: [*l, *l]}\n  last: [1, 2]",
		"- &s [[1, 2], [3, [4, 5]]]\n- *s\n- {deep: {deeper: *s}}",
		"plain: [1, 2, 3]",
	}
	for _, text := range docs {
		var doc yaml.Node
		require.NoError(t, yaml.Unmarshal([]byte(text), &doc))
		total := maxYAMLNodes - func() int {
			c := &yamlConverter{budget: maxYAMLNodes, limit: maxYAMLNodes}
			_, err := c.value(&doc, "", 0)
			require.NoError(t, err)
			return c.budget
		}()
		require.Equal(t, total, expandedSizes{limit: maxYAMLNodes, of: map[*yaml.Node]int{}}.size(&doc), text)
		for limit := 1; limit <= total+1; limit++ {
			_, convErr := (&yamlConverter{budget: limit, limit: limit}).value(&doc, "", 0)
			checkErr := checkExpandedSize(&doc, limit)
			if convErr == nil {
				assert.NoError(t, checkErr, "limit %d: %s", limit, text)
				continue
			}
			if assert.Error(t, checkErr, "limit %d: %s", limit, text) {
				assert.Equal(t, convErr.Error(), checkErr.Error(), "limit %d: %s", limit, text)
			}
		}
	}
}
