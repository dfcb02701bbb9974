// Command gendocs writes the pages generated from the code: the
// configuration reference (docs/configuration.md) from the config structs
// and daemon/config_doc.go, and the CLI reference (docs/cli/*.md) from the
// cobra tree. Run it with `go generate ./...` from the repository root;
// TestGeneratedDocsAreCurrent fails when the committed pages differ.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/sandbox0/sandbox0d/cli"
	"github.com/sandbox0/sandbox0d/daemon"
)

func main() {
	if err := generate("."); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

// generate writes the generated pages under root/docs. docs/cli is
// rewritten whole, so a removed command loses its page.
func generate(root string) error {
	page, err := daemon.ConfigMarkdown()
	if err != nil {
		return err
	}
	docs := filepath.Join(root, "docs")
	if err := os.MkdirAll(docs, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(docs, "configuration.md"), []byte(page), 0o644); err != nil {
		return err
	}
	cliDir := filepath.Join(docs, "cli")
	old, _ := filepath.Glob(filepath.Join(cliDir, "*.md"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	return cli.WriteMarkdown(cliDir)
}
