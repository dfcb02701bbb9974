package upstream

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// docs/local-sessions.md copies the markdown table from the doc comment of
// classificationRules; it must say exactly what the code does, row by row.
func TestDocTableMatchesTheRules(t *testing.T) {
	file, err := parser.ParseFile(token.NewFileSet(), "classify.go", nil, parser.ParseComments)
	require.NoError(t, err)
	var doc string
	ast.Inspect(file, func(n ast.Node) bool {
		if gd, ok := n.(*ast.GenDecl); ok && gd.Tok == token.VAR {
			for _, spec := range gd.Specs {
				if vs := spec.(*ast.ValueSpec); vs.Names[0].Name == "classificationRules" {
					doc = gd.Doc.Text()
				}
			}
		}
		return true
	})
	require.NotEmpty(t, doc, "classificationRules has a doc comment")
	var rows []string
	for _, line := range strings.Split(doc, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| Upstream answer") {
			rows = append(rows, line)
		}
	}
	require.Len(t, rows, len(classificationRules), "one table row per rule")
	for i, r := range classificationRules {
		assert.Equal(t, "| "+r.upstream+" | "+r.outcome()+" |", rows[i], "row %d", i+1)
	}
}

func TestSubjectDetection(t *testing.T) {
	subj := subjects{}.with("env_abc", aboutEnvironment).with("agent_1", aboutAgent).with("vlt_9", aboutVault)
	for msg, want := range map[string]subject{
		"Environment env_abc not found":                       aboutEnvironment,
		"vlt_9 is archived; env_abc is fine":                  aboutVault,
		"Managed Agents: the environment was archived":        aboutEnvironment,
		"agent agent_1 cannot use environment env_abc":        aboutAgent,
		"environment_id does not exist":                       aboutEnvironment,
		"The memory store you referenced is archived":         aboutMemoryStore,
		"profiles are archived":                               aboutNothing,
		"Agents API: session could not be created (archived)": aboutAgent,
	} {
		assert.Equal(t, want, subj.about(msg), msg)
	}
}

func TestBackoffIsCappedFullJitter(t *testing.T) {
	bo := backoff{base: 500e6, max: 30e9}
	for retry := 1; retry < 80; retry++ {
		ceiling := bo.max
		if retry <= 10 {
			ceiling = min(bo.max, bo.base<<(retry-1))
		}
		for range 50 {
			d := bo.delay(retry)
			assert.GreaterOrEqual(t, d, time.Duration(0))
			assert.LessOrEqual(t, d, ceiling, "retry %d", retry)
		}
	}
}

func TestSessionIDOf(t *testing.T) {
	for body, want := range map[string]string{
		`{"id":"sesn_1","type":"session"}`:                   "sesn_1",
		`{"type":"session","metadata":{"id":"x"},"id":"s2"}`: "s2",
		` { "id" : "s3" } `:                                  "s3",
	} {
		got, err := sessionIDOf([]byte(body))
		if err != nil || got != want {
			t.Errorf("sessionIDOf(%s) = %q, %v; want %q", body, got, err, want)
		}
	}
	for _, body := range []string{``, `[]`, `"id"`, `{"id":5}`, `{"id":""}`, `{"type":"session"}`, `{"type":`, `null`} {
		if got, err := sessionIDOf([]byte(body)); err == nil {
			t.Errorf("sessionIDOf(%s) = %q, want an error", body, got)
		}
	}
}
