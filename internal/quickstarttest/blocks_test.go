package quickstarttest

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/sandbox0/sandbox0d/internal/repotest"
)

// block is a fenced code block a "<!-- quickstart: NAME -->" comment marks.
type block struct {
	lang, text string
}

// marked matches a marker comment (an optional parenthesis after the name is
// for the reader) and the fenced block right after it.
var marked = regexp.MustCompile("(?s)<!-- quickstart: ([^(\n>]*?)(?: \\([^)]*\\))? -->\n```(\\w*)\n(.*?)```\n")

// markedBlocks returns the marked blocks of a markdown file of the checkout
// by name; a name used twice fails the test.
func markedBlocks(t *testing.T, file string) map[string]block {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repotest.Root(), file))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]block{}
	for _, m := range marked.FindAllStringSubmatch(string(data), -1) {
		if _, dup := out[m[1]]; dup {
			t.Fatalf("%s marks two blocks %q", file, m[1])
		}
		out[m[1]] = block{lang: m[2], text: m[3]}
	}
	return out
}

// need returns the named block, failing the test (with what to do) when the
// file has no such marked block.
func need(t *testing.T, blocks map[string]block, file, name, lang string) string {
	t.Helper()
	b, ok := blocks[name]
	if !ok {
		t.Fatalf("%s has no block marked <!-- quickstart: %s --> (a ```%s block right after the comment); "+
			"this test runs it: keep the marker when editing the page", file, name, lang)
	}
	if b.lang != lang {
		t.Fatalf("%s: the block marked %q is ```%s, want ```%s", file, name, b.lang, lang)
	}
	return b.text
}

func TestMarkedBlocksParse(t *testing.T) {
	dir := t.TempDir()
	page := "intro\n<!-- quickstart: one -->\n```sh\necho 1\n```\ntext\n" +
		"<!-- quickstart: two words (a note) -->\n```text\nout\nput\n```\n" +
		"```sh\nnot marked\n```\n<!-- quickstart: far -->\n\n```sh\nnot right after\n```\n"
	if err := os.WriteFile(filepath.Join(dir, "page.md"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(repotest.Root(), filepath.Join(dir, "page.md"))
	if err != nil {
		t.Fatal(err)
	}
	got := markedBlocks(t, rel)
	want := map[string]block{"one": {"sh", "echo 1\n"}, "two words": {"text", "out\nput\n"}}
	if len(got) != len(want) || got["one"] != want["one"] || got["two words"] != want["two words"] {
		t.Fatalf("got %q, want %q", got, want)
	}
}
