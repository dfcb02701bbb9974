package deployfiles

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// YAMLToJSON converts exactly one YAML document to JSON (the single-file
// `deployments create/update -f` path; a directory goes through DecodeDir). It walks the node tree
// rather than decoding into interface{} so that scalars keep the meaning
// they have in JSON: an unquoted date stays the string it was written as
// (yaml.v3 would turn it into a time), and null stays null, which update
// needs to tell "clear this field" from "leave it".
func YAMLToJSON(data []byte) ([]byte, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("holds more than one YAML document; put one deployment per file")
	}
	value, err := documentValue(&doc)
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(value)
	if err != nil {
		return nil, fmt.Errorf("convert to JSON: %w", err)
	}
	return out, nil
}

// documentValue converts one decoded YAML document to the value JSON would
// decode it to (map[string]any, []any, json.Number, ...), refusing alias
// bombs before building anything.
func documentValue(doc *yaml.Node) (any, error) {
	if err := checkExpandedSize(doc, maxYAMLNodes); err != nil {
		return nil, err
	}
	conv := &yamlConverter{budget: maxYAMLNodes, limit: maxYAMLNodes}
	return conv.value(doc, "", 0)
}

// Limits on a definition's shape: nesting depth, and the number of values
// after alias expansion (aliases of aliases could otherwise expand a small
// file into an enormous body).
const (
	maxYAMLDepth = 64
	maxYAMLNodes = 1 << 20
)

// checkExpandedSize refuses a document that expands to more than limit
// values, before anything is built: each node's expanded size
// is computed once (an alias costs its target's), so an alias bomb is
// refused in time linear in the file instead of after building a million
// values. The error names the value at which the converter's budget would
// run out, which is where the converter itself would stop.
func checkExpandedSize(doc *yaml.Node, limit int) error {
	sizes := expandedSizes{limit: limit, of: map[*yaml.Node]int{}}
	if sizes.size(doc) <= limit {
		return nil
	}
	budget := limit
	n, path := doc, ""
	for {
		budget-- // for n itself, as yamlConverter.value counts it
		if budget < 0 {
			return fmt.Errorf("%s: more than %d values after expanding aliases", displayPath(path), limit)
		}
		// Skip the children that fit in what is left; the first that does
		// not is where the budget runs out.
		var next *yaml.Node
		nextPath := path
		switch n.Kind {
		case yaml.DocumentNode:
			next = n.Content[0] // not empty: its size exceeds the budget
		case yaml.AliasNode:
			next = n.Alias
		case yaml.SequenceNode:
			for i, child := range n.Content {
				if size := sizes.size(child); size > budget {
					next, nextPath = child, fmt.Sprintf("%s[%d]", path, i)
					break
				} else {
					budget -= size
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if size := sizes.size(n.Content[i+1]); size > budget {
					next, nextPath = n.Content[i+1], n.Content[i].Value
					if path != "" {
						nextPath = path + "." + n.Content[i].Value
					}
					break
				} else {
					budget -= size
				}
			}
		}
		n, path = next, nextPath
	}
}

// expandedSizes memoizes the number of values each node expands to, as
// yamlConverter.value counts them (mapping keys are not values), capped at
// limit+1.
type expandedSizes struct {
	limit int
	of    map[*yaml.Node]int
}

func (s expandedSizes) size(n *yaml.Node) int {
	if size, ok := s.of[n]; ok {
		return size
	}
	size := 1
	add := func(child *yaml.Node) { size = min(size+s.size(child), s.limit+1) }
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, child := range n.Content {
			add(child)
		}
	case yaml.AliasNode:
		add(n.Alias)
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			add(n.Content[i])
		}
	}
	s.of[n] = size
	return size
}

type yamlConverter struct {
	budget, limit int
}

func (c *yamlConverter) value(n *yaml.Node, path string, depth int) (any, error) {
	if depth > maxYAMLDepth {
		return nil, fmt.Errorf("%s: nested more than %d levels deep", displayPath(path), maxYAMLDepth)
	}
	if c.budget--; c.budget < 0 {
		return nil, fmt.Errorf("%s: more than %d values after expanding aliases", displayPath(path), c.limit)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, errors.New("empty YAML document")
		}
		return c.value(n.Content[0], path, depth)
	case yaml.AliasNode:
		return c.value(n.Alias, path, depth+1)
	case yaml.SequenceNode:
		items := make([]any, 0, len(n.Content))
		for i, child := range n.Content {
			v, err := c.value(child, fmt.Sprintf("%s[%d]", path, i), depth+1)
			if err != nil {
				return nil, err
			}
			items = append(items, v)
		}
		return items, nil
	case yaml.MappingNode:
		return c.mapping(n, path, depth)
	case yaml.ScalarNode:
		return yamlScalar(n, path)
	}
	return nil, fmt.Errorf("%s: unsupported YAML node (line %d)", displayPath(path), n.Line)
}

func (c *yamlConverter) mapping(n *yaml.Node, path string, depth int) (map[string]any, error) {
	obj := make(map[string]any, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		keyNode, valueNode := n.Content[i], n.Content[i+1]
		if keyNode.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("%s: line %d: keys must be plain strings", displayPath(path), keyNode.Line)
		}
		key := keyNode.Value
		if keyNode.Tag == "!!merge" {
			return nil, fmt.Errorf("%s: line %d: YAML merge keys (<<) are not supported; write the fields out", displayPath(path), keyNode.Line)
		}
		childPath := key
		if path != "" {
			childPath = path + "." + key
		}
		if _, dup := obj[key]; dup {
			return nil, fmt.Errorf("%s: line %d: key appears twice", childPath, keyNode.Line)
		}
		v, err := c.value(valueNode, childPath, depth+1)
		if err != nil {
			return nil, err
		}
		obj[key] = v
	}
	return obj, nil
}

// yamlScalar maps YAML scalars to JSON values: null, booleans and numbers
// become JSON's; everything else (strings, timestamps, binary) stays the
// text as written.
func yamlScalar(n *yaml.Node, path string) (any, error) {
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", displayPath(path), n.Line, err)
		}
		return b, nil
	case "!!int", "!!float":
		// A number already written the JSON way goes through as written, so
		// large or precise values are not rounded through float64.
		if jsonNumber.MatchString(n.Value) {
			return json.Number(n.Value), nil
		}
		if n.ShortTag() == "!!int" {
			var i int64
			if err := n.Decode(&i); err != nil {
				return nil, fmt.Errorf("%s: line %d: integer out of range: %w", displayPath(path), n.Line, err)
			}
			return json.Number(strconv.FormatInt(i, 10)), nil
		}
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", displayPath(path), n.Line, err)
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("%s: line %d: %s has no JSON equivalent", displayPath(path), n.Line, n.Value)
		}
		return f, nil
	}
	return n.Value, nil
}

// jsonNumber is JSON's number grammar.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

func displayPath(path string) string {
	if path == "" {
		return "document"
	}
	return path
}
