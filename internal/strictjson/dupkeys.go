// Package strictjson refuses JSON that encoding/json would accept but read
// ambiguously: an object naming the same key twice, where the decoder keeps
// the last value silently ({"name":"x","name":"y"} decodes as "y"). A
// client and sandbox0d could then disagree on what a request said.
package strictjson

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
)

// DuplicateKeyError names the repeated key by its wire path.
type DuplicateKeyError struct {
	// Path is the key's path from the document root, e.g. "metadata.team"
	// or "resources[1].url"; a top-level key is its own path.
	Path string
	// Key is the repeated key itself.
	Key string
}

func (e *DuplicateKeyError) Error() string {
	return e.Path + ": duplicate key; a JSON object may name each key once: send " + strconv.Quote(e.Key) + " once"
}

// frame is one open object or array of the walk.
type frame struct {
	object bool
	seen   map[string]struct{} // object keys so far
	key    string              // object: the key whose value comes next
	index  int                 // array: the index of the next element
	// wantKey: the object's next string token is a key (not a value).
	wantKey bool
}

// CheckDuplicateKeys walks data's tokens and returns a *DuplicateKeyError for
// the first object that repeats a key, at any depth. Data that is not JSON
// (or stops being JSON after a point) is not its business: it returns nil
// there and leaves the syntax error to the request's own decoder, which
// words it for the route.
func CheckDuplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers are skipped; do not parse them as floats
	var stack []frame
	for {
		tok, err := dec.Token()
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return nil // a syntax error: the route's decoder reports it
		}
		var top *frame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			// Token only yields a string or '}' where a key belongs.
			key, isKey := tok.(string)
			if !isKey {
				stack = stack[:len(stack)-1] // '}'
				valueDone(stack)
				continue
			}
			if _, dup := top.seen[key]; dup {
				return &DuplicateKeyError{Path: path(stack, key), Key: key}
			}
			if top.seen == nil {
				top.seen = make(map[string]struct{}, 8)
			}
			top.seen[key] = struct{}{}
			top.key, top.wantKey = key, false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{object: true, wantKey: true})
		case json.Delim('['):
			stack = append(stack, frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone(stack)
		default:
			valueDone(stack)
		}
	}
}

// valueDone records that the innermost container's current value ended.
func valueDone(stack []frame) {
	if len(stack) == 0 {
		return
	}
	top := &stack[len(stack)-1]
	if top.object {
		top.wantKey = true
	} else {
		top.index++
	}
}

// path renders the open containers' positions, then key.
func path(stack []frame, key string) string {
	var b strings.Builder
	for _, f := range stack[:len(stack)-1] {
		if f.object {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		} else {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(f.index))
			b.WriteByte(']')
		}
	}
	if b.Len() > 0 {
		b.WriteByte('.')
	}
	b.WriteString(key)
	return b.String()
}
