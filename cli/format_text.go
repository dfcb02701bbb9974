package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode"
)

// Column widths (in characters) above which table cells are cut with "…".
const (
	maxNameWidth    = 32
	maxMessageWidth = 60
)

// truncate cuts s to at most max characters, marking the cut with "…".
func truncate(s string, max int) string {
	runes := []rune(s)
	if len(runes) <= max || max < 1 {
		return s
	}
	return string(runes[:max-1]) + "…"
}

// oneLine makes API text safe for a table cell or a terminal: whitespace runs
// (tabs and newlines would break the table) become one space, and other
// control characters (terminal escapes) become "?".
func oneLine(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			if !space {
				b.WriteByte(' ')
			}
			space = true
			continue
		case unicode.IsControl(r):
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
		space = false
	}
	return strings.TrimSpace(b.String())
}

// cell is oneLine plus truncation, for table cells.
func cell(s string, max int) string { return truncate(oneLine(s), max) }

// newTable returns a tabwriter for aligned, space-padded columns.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// writeRow writes one tab-separated row.
func writeRow(w io.Writer, cells ...string) {
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

// printJSON pretty-prints JSON bytes from the API as they are.
func printJSON(w io.Writer, data []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, bytes.TrimSpace(data), "", "  "); err != nil {
		return fmt.Errorf("the daemon's answer is not valid JSON: %w", err)
	}
	out.WriteByte('\n')
	_, err := w.Write(out.Bytes())
	return err
}

// printValueJSON pretty-prints a value built by the client itself.
func printValueJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// decodeJSON decodes an API answer, naming what was expected on failure.
func decodeJSON(data []byte, what string, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s from the daemon's answer: %w", what, err)
	}
	return nil
}
