package deployments

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"unicode"
)

// checkStrings refuses NUL and other control characters in every string of
// a request body, map keys included, naming the field. They are never
// meaningful in a deployment and break things far from the request: a NUL
// in the first user message is accepted here but fails every run's session
// ("environment variable contains NUL"). Tab and newline are allowed in
// prose only: text blocks, the description and memory store instructions.
func checkStrings(members map[string]json.RawMessage) error {
	names := make([]string, 0, len(members))
	for name := range members {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !mayHoldControlChars(members[name]) {
			continue
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(members[name]))
		dec.UseNumber()
		if dec.Decode(&v) != nil {
			continue // malformed members were refused by their decoder
		}
		if err := walkStrings(name, v, name == "description"); err != nil {
			return err
		}
	}
	return nil
}

// mayHoldControlChars reports whether raw JSON can decode to a string (or
// key) with a control character in it. JSON forbids raw C0 characters inside
// strings, so one can only come from an escape (a backslash), a raw DEL, or a
// C1 character (U+0080–U+009F, UTF-8 C2 80–C2 9F). Most members contain none
// of these bytes and skip the decode-and-walk below, which was a third of
// a create's decoding time.
func mayHoldControlChars(raw []byte) bool {
	for i, b := range raw {
		switch {
		case b == '\\', b == 0x7f:
			return true
		case b == 0xc2 && i+1 < len(raw) && raw[i+1] >= 0x80 && raw[i+1] <= 0x9f:
			return true
		}
	}
	return false
}

func walkStrings(path string, v any, prose bool) error {
	switch v := v.(type) {
	case string:
		return checkControlChars(path, v, prose, "")
	case []any:
		for i, item := range v {
			if err := walkStrings(fieldAt(path, i), item, false); err != nil {
				return err
			}
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		isTextBlock := v["type"] == "text"
		for _, k := range keys {
			if err := checkControlChars(path, k, false, "key "); err != nil {
				return err
			}
			proseMember := (isTextBlock && k == "text") || k == "instructions"
			if err := walkStrings(path+"."+k, v[k], proseMember); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkControlChars(path, s string, prose bool, what string) error {
	for i, r := range s {
		if !unicode.IsControl(r) || (prose && (r == '\t' || r == '\n')) {
			continue
		}
		allowed := "no control characters are allowed"
		if prose {
			allowed = "only tab and newline are allowed among control characters"
		}
		return invalid(path, "%scontains the control character %s at byte %d; %s", what, controlName(r), i, allowed)
	}
	return nil
}

func controlName(r rune) string {
	if r == 0 {
		return "NUL (U+0000)"
	}
	return fmt.Sprintf("U+%04X", r)
}
