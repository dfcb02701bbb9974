package cli

import (
	"io"
	"strings"
)

// block collects "Key: value" lines and prints them with aligned values;
// a value of several lines continues under the first.
type block struct {
	rows []blockRow
}

type blockRow struct {
	key    string
	values []string
}

func (b *block) add(key string, values ...string) {
	b.rows = append(b.rows, blockRow{key: key, values: values})
}

// addList adds a list that prints "-" when empty.
func (b *block) addList(key string, values []string) {
	if len(values) == 0 {
		values = []string{"-"}
	}
	b.add(key, values...)
}

func (b *block) write(w io.Writer) error {
	width := 0
	for _, r := range b.rows {
		width = max(width, len(r.key)+1)
	}
	var out strings.Builder
	for _, r := range b.rows {
		label := r.key + ":"
		for i, v := range r.values {
			if i > 0 {
				label = ""
			}
			out.WriteString(label)
			out.WriteString(strings.Repeat(" ", width-len(label)+2))
			out.WriteString(v)
			out.WriteByte('\n')
		}
	}
	_, err := io.WriteString(w, out.String())
	return err
}
