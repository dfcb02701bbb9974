package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"
)

// newDocsCommand writes the CLI reference from the command tree; hidden,
// since it is for packaging (man pages) and `go generate` (markdown).
func newDocsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:    "docs",
		Short:  "Write the CLI reference generated from the command tree",
		Hidden: true,
		Args:   cobra.NoArgs,
	}
	var dir string
	man := &cobra.Command{
		Use:   "man -o DIR",
		Short: "Write man pages (section 1) into DIR",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return WriteManPages(dir)
		},
	}
	man.Flags().StringVarP(&dir, "output", "o", "", "directory to write the man pages into (created if missing)")
	_ = man.MarkFlagRequired("output")
	md := &cobra.Command{
		Use:   "markdown -o DIR",
		Short: "Write the markdown CLI reference into DIR",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return WriteMarkdown(dir)
		},
	}
	md.Flags().StringVarP(&dir, "output", "o", "", "directory to write the markdown pages into (created if missing)")
	_ = md.MarkFlagRequired("output")
	cmd.AddCommand(man, md)
	return cmd
}

// docRoot is the command tree as documented: no date stamps and no
// machine-specific defaults, so generated pages are the same everywhere.
func docRoot() *cobra.Command {
	root := newRootWith(docClientDeps())
	root.InitDefaultCompletionCmd()
	hostDefaults := map[string]string{
		"data-dir": "$STATE_DIRECTORY, /var/lib/sandbox0d (root) or ./sandbox0d-data",
		"socket":   "$RUNTIME_DIRECTORY/sandbox0d.sock, /run/sandbox0d/sandbox0d.sock (root) or ./sandbox0d.sock",
	}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.DisableAutoGenTag = true
		c.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
			if d, ok := hostDefaults[f.Name]; ok && f.DefValue != "" {
				f.DefValue = d
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return root
}

// WriteMarkdown writes one markdown page per command into dir.
func WriteMarkdown(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("docs: %w", err)
	}
	return doc.GenMarkdownTree(docRoot(), dir)
}

// WriteManPages writes one section-1 man page per command into dir.
func WriteManPages(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("docs: %w", err)
	}
	return doc.GenManTree(docRoot(), &doc.GenManHeader{Title: "SANDBOX0D", Section: "1", Source: "sandbox0d", Manual: "sandbox0d manual"}, dir)
}

// docClientDeps replaces the host-specific defaults shown in help texts
// with their description.
func docClientDeps() clientDeps {
	deps := defaultClientDeps()
	deps.defaultSocket = func() string { return "$RUNTIME_DIRECTORY/sandbox0d.sock or /run/sandbox0d/sandbox0d.sock (root)" }
	return deps
}
