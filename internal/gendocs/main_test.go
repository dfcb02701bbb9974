package main

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

// The committed generated pages must be what the code produces now.
func TestGeneratedDocsAreCurrent(t *testing.T) {
	fresh := t.TempDir()
	require.NoError(t, generate(fresh))
	repo := filepath.Join("..", "..")
	want := listGenerated(t, fresh)
	got := listGenerated(t, repo)
	require.Equal(t, want, got, "docs/cli pages differ from the command tree; run `go generate ./...` and commit docs/")
	for _, rel := range want {
		w, err := os.ReadFile(filepath.Join(fresh, rel))
		require.NoError(t, err)
		g, err := os.ReadFile(filepath.Join(repo, rel))
		require.NoError(t, err, "%s is missing; run `go generate ./...` and commit docs/", rel)
		require.Equal(t, string(w), string(g), "%s is stale; run `go generate ./...` and commit docs/", rel)
	}
}

func listGenerated(t *testing.T, root string) []string {
	t.Helper()
	out := []string{"docs/configuration.md"}
	pages, err := filepath.Glob(filepath.Join(root, "docs", "cli", "*.md"))
	require.NoError(t, err)
	for _, p := range pages {
		rel, err := filepath.Rel(root, p)
		require.NoError(t, err)
		out = append(out, rel)
	}
	sort.Strings(out)
	return out
}
