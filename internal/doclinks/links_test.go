package doclinks

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/sandbox0/sandbox0d/internal/repotest"
)

// link matches an inline Markdown link or image, [text](target) or
// ![alt](target): the target up to the first space or closing parenthesis.
var link = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// fence matches a code fence line; links inside code blocks are text.
var fence = regexp.MustCompile("^\\s*(```|~~~)")

type ref struct {
	line   int
	target string
}

func TestRelativeLinksResolve(t *testing.T) {
	root := repotest.Root()
	pages := []string{filepath.Join(root, "README.md")}
	if err := filepath.WalkDir(filepath.Join(root, "docs"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
			pages = append(pages, path)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, page := range pages {
		rel, _ := filepath.Rel(root, page)
		lines := readLines(t, page)
		for _, r := range links(lines) {
			if strings.Contains(r.target, "://") || strings.HasPrefix(r.target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(r.target, "#")
			dest := page
			if file != "" {
				dest = filepath.Join(filepath.Dir(page), file)
			}
			if _, err := os.Stat(dest); err != nil {
				t.Errorf("%s:%d: link %q: %s does not exist", rel, r.line, r.target, dest)
				continue
			}
			if frag != "" && strings.HasSuffix(dest, ".md") && !anchors(readLines(t, dest))[frag] {
				t.Errorf("%s:%d: link %q: no heading of %s makes the anchor #%s", rel, r.line, r.target, filepath.Base(dest), frag)
			}
			checked++
		}
	}
	// A guard against a pattern that silently stops matching.
	if checked < 50 {
		t.Fatalf("only %d relative links found in the manual", checked)
	}
}

func TestAnchorsAreGitHubs(t *testing.T) {
	got := anchors([]string{"# Running a cluster", "## Quota and compaction", "## What changes from one box, and what does not",
		"### `sandbox0d migrate`", "## Quota and compaction", "```", "# not a heading", "```"})
	for _, want := range []string{"running-a-cluster", "quota-and-compaction", "what-changes-from-one-box-and-what-does-not",
		"sandbox0d-migrate", "quota-and-compaction-1"} {
		if !got[want] {
			t.Errorf("no anchor %q in %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Error("a line in a code block made an anchor")
	}
}

func readLines(t *testing.T, path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(data), "\n")
}

// links are the link targets of lines outside code blocks.
func links(lines []string) []ref {
	var out []ref
	inCode := false
	for i, line := range lines {
		if fence.MatchString(line) {
			inCode = !inCode
			continue
		}
		if inCode {
			continue
		}
		for _, m := range link.FindAllStringSubmatch(line, -1) {
			out = append(out, ref{line: i + 1, target: m[1]})
		}
	}
	return out
}

// anchors are the fragments GitHub makes of headings: lower case, every
// character but letters, digits, '-' and '_' dropped, spaces to '-', and a
// repeated heading suffixed -1, -2, ….
func anchors(lines []string) map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	inCode := false
	for _, line := range lines {
		if fence.MatchString(line) {
			inCode = !inCode
			continue
		}
		if inCode || !strings.HasPrefix(line, "#") {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#"))) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		slug := b.String()
		if n := seen[slug]; n > 0 {
			out[slug+"-"+strconv.Itoa(n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}
