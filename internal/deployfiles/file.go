package deployfiles

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/sandbox0/sandbox0d/internal/strictjson"
)

// document is one decoded document before it becomes a Document: its value
// as JSON would decode it, and (for YAML) its node, to find field lines.
type document struct {
	value any
	node  *yaml.Node // nil for JSON
	line  int
}

// DecodeFile decodes one file's documents. name is the file's path relative
// to the directory (it makes the default keys and the sources); baseDir is
// the directory authorization_token_file paths are relative to.
func DecodeFile(name string, data []byte, baseDir string, opts Options) ([]Document, error) {
	var (
		raw []document
		err error
	)
	if strings.EqualFold(path.Ext(name), ".json") {
		raw, err = decodeJSON(name, data)
	} else {
		raw, err = decodeYAML(name, data)
	}
	if err != nil {
		return nil, err
	}
	out := make([]Document, 0, len(raw))
	for i, d := range raw {
		index := i
		if len(raw) == 1 {
			index = -1
		}
		doc, err := finish(name, index, d, baseDir, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, doc)
	}
	return out, nil
}

// decodeJSON reads a .json file: exactly one object, passed through with
// its numbers as written (no float64 round trip).
func decodeJSON(name string, data []byte) (docs []document, err error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, nil
	}
	line := 1 + bytes.Count(data[:bytes.Index(data, trimmed[:1])], []byte("\n"))
	fail := func(reason string) error { return &Error{File: name, Line: line, Doc: -1, Reason: reason} }
	if dup := strictjson.CheckDuplicateKeys(trimmed); dup != nil {
		return nil, fail(dup.Error())
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fail(fmt.Sprintf("not valid JSON: %v", err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fail("holds more than one JSON value: a .json file holds one deployment object (use YAML with --- for several)")
	}
	return []document{{value: v, line: line}}, nil
}

// decodeYAML reads every document of a YAML stream. Empty documents (a
// leading or trailing ---, a file of comments) are skipped, so they do not
// shift the #N of the others.
func decodeYAML(name string, data []byte) (docs []document, err error) {
	// A panic in the YAML parser on a hostile file must not take the daemon
	// down with it (deployments_dir is read in the daemon).
	defer func() {
		if r := recover(); r != nil {
			docs, err = nil, &Error{File: name, Doc: -1, Reason: fmt.Sprintf("not valid YAML (the parser gave up: %v)", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); errors.Is(err, io.EOF) {
			return docs, nil
		} else if err != nil {
			return nil, &Error{File: name, Doc: -1, Reason: fmt.Sprintf("not valid YAML: %v", err)}
		}
		if len(n.Content) == 0 || (n.Content[0].Kind == yaml.ScalarNode && n.Content[0].ShortTag() == "!!null") {
			continue
		}
		docIndex := len(docs)
		value, err := documentValue(&n)
		if err != nil {
			return nil, &Error{File: name, Line: n.Content[0].Line, Doc: docIndex, Reason: err.Error()}
		}
		docs = append(docs, document{value: value, node: &n, line: n.Content[0].Line})
	}
}

// finish turns one decoded document into a Document: takes out `key`,
// checks `paused`, resolves token references. index is the document's
// place in a multi-document file, -1 when the file holds one.
func finish(name string, index int, d document, baseDir string, opts Options) (Document, error) {
	fail := func(field, reason string, path ...any) error {
		return &Error{File: name, Line: lineOf(d, path...), Doc: index, Field: field, Reason: reason}
	}
	obj, ok := d.value.(map[string]any)
	if !ok {
		return Document{}, fail("", "must be a mapping of deployment fields (name, agent, environment_id, initial_events, ...), not a "+kindOf(d.value))
	}
	key := name
	if index >= 0 {
		key = fmt.Sprintf("%s#%d", name, index)
	}
	if v, present := obj["key"]; present {
		s, ok := v.(string)
		if !ok || s == "" || len(s) > MaxKeyLen || strings.ContainsFunc(s, unicode.IsControl) {
			return Document{}, fail("key", fmt.Sprintf("must be a non-empty string of at most %d bytes without control characters (or leave it out: the key is then the file path)", MaxKeyLen), "key")
		}
		key = s
		delete(obj, "key")
	}
	if v, present := obj["paused"]; present {
		if _, ok := v.(bool); !ok {
			return Document{}, fail("paused", "must be true or false (or leave it out: the deployment's pause state is then left as it is)", "paused")
		}
	}
	if v, present := obj["adopt"]; present {
		if s, ok := v.(string); !ok || !strings.HasPrefix(s, "depl_") {
			return Document{}, fail("adopt", "must be the id of an existing deployment that belongs to no set (depl_…), which the first apply takes into the set", "adopt")
		}
	}
	if err := resolveTokens(obj, baseDir, opts, fail); err != nil {
		return Document{}, err
	}
	def, err := json.Marshal(obj)
	if err != nil {
		return Document{}, fail("", fmt.Sprintf("cannot convert to JSON: %v", err))
	}
	return Document{Key: key, Source: fmt.Sprintf("%s:%d", name, d.line), Definition: def}, nil
}

func kindOf(v any) string {
	switch v.(type) {
	case []any:
		return "list"
	case nil:
		return "null"
	}
	return "single value"
}

// lineOf finds the line of a field in a YAML document (path: mapping keys
// and sequence indexes), falling back to the deepest part found, then to
// the document's line.
func lineOf(d document, path ...any) int {
	line := d.line
	if d.node == nil || len(d.node.Content) == 0 {
		return line
	}
	n := d.node.Content[0]
	for _, step := range path {
		for n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		var next *yaml.Node
		switch s := step.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == s {
						line, next = n.Content[i].Line, n.Content[i+1]
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && s < len(n.Content) {
				next = n.Content[s]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}
