package deployments

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// ApplyRequest is a decoded plan/apply body (docs: the apply wire contract):
// every document of a deployment set, already validated like a create.
type ApplyRequest struct {
	Documents []ApplyDocument
	Prune     bool
	Force     bool
	IfMatch   string
}

// ApplyDocument is one validated document of the set.
type ApplyDocument struct {
	Key    string
	Source string
	Input  CreateInput
	// Paused is nil when the document does not state it: apply then leaves
	// the deployment's pause alone (ownership of run-time state).
	Paused *bool
	// Adopt names an existing deployment that belongs to no set: the first
	// apply makes it this document's member (same id, runs and history)
	// instead of creating a copy. Once a member, it is ignored.
	Adopt string
}

// MaxApplyDocuments bounds one set; a bigger set is split into several.
const MaxApplyDocuments = 5000

// MaxKeyLen bounds a document key (a relative path and an index).
const MaxKeyLen = 512

var setNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CheckSetName refuses a set name that is not a short plain word.
func CheckSetName(set string) error {
	if !setNamePattern.MatchString(set) {
		return invalid("set", "%q is not a valid set name: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", set)
	}
	return nil
}

// DecodeApply parses a plan/apply body. Each definition is decoded by the
// create decoder, so its errors are exactly the create's, with the path
// prefixed by deployments[i].definition and the document's source appended.
func DecodeApply(body []byte) (ApplyRequest, error) {
	members, err := topLevel(body, []string{"deployments", "prune", "force", "if_match"})
	if err != nil {
		return ApplyRequest{}, err
	}
	var req ApplyRequest
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"prune", &req.Prune}, {"force", &req.Force}} {
		if raw, ok := members[f.name]; ok && !isNull(raw) {
			if err := json.Unmarshal(raw, f.dst); err != nil {
				return req, invalid(f.name, "must be a boolean")
			}
		}
	}
	if raw, ok := members["if_match"]; ok && !isNull(raw) {
		if req.IfMatch, err = decodeString("if_match", raw); err != nil {
			return req, err
		}
		if !strings.HasPrefix(req.IfMatch, "sha256:") {
			return req, invalid("if_match", "must be a plan hash as printed by a dry run (sha256:…), got %q", req.IfMatch)
		}
	}
	raw, ok := members["deployments"]
	if !ok || isNull(raw) {
		return req, invalid("deployments", "is required: the list of the set's documents (an empty list with prune archives the whole set, which needs force)")
	}
	var docs []struct {
		Key        *string         `json:"key"`
		Source     string          `json:"source"`
		Definition json.RawMessage `json:"definition"`
	}
	if err := decodeStrict("deployments", raw, &docs); err != nil {
		return req, err
	}
	if len(docs) > MaxApplyDocuments {
		return req, invalid("deployments", "has %d documents, at most %d allowed in one set: split the directory into several sets", len(docs), MaxApplyDocuments)
	}
	seen := make(map[string]int, len(docs))
	for i, d := range docs {
		at := fieldAt("deployments", i)
		if d.Key == nil || *d.Key == "" {
			return req, invalid(at+".key", "is required: the document's stable identity in the set")
		}
		if len(*d.Key) > MaxKeyLen {
			return req, invalid(at+".key", "is %d bytes long, at most %d allowed", len(*d.Key), MaxKeyLen)
		}
		if j, dup := seen[*d.Key]; dup {
			return req, invalid(at+".key", "%q is also the key of deployments[%d]%s: give one of them its own key:", *d.Key, j, sourceSuffix(docs[j].Source))
		}
		seen[*d.Key] = i
		doc, err := decodeApplyDefinition(d.Definition)
		if err != nil {
			return req, inDocument(err, i, d.Source)
		}
		doc.Key, doc.Source = *d.Key, d.Source
		req.Documents = append(req.Documents, doc)
	}
	return req, nil
}

// decodeApplyDefinition takes the optional paused member out of a create
// body and decodes the rest with the create decoder.
func decodeApplyDefinition(raw json.RawMessage) (ApplyDocument, error) {
	var doc ApplyDocument
	if len(bytes.TrimSpace(raw)) == 0 || isNull(raw) {
		return doc, invalid("", "is required: the deployment's create body")
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil || members == nil {
		return doc, invalid("", "must be a JSON object: the deployment's create body")
	}
	_, hasPaused := members["paused"]
	_, hasAdopt := members["adopt"]
	if p, ok := members["paused"]; ok {
		delete(members, "paused")
		if !isNull(p) {
			var b bool
			if err := json.Unmarshal(p, &b); err != nil {
				return doc, invalid("paused", "must be a boolean")
			}
			doc.Paused = &b
		}
	}
	if a, ok := members["adopt"]; ok {
		delete(members, "adopt")
		if !isNull(a) {
			if err := json.Unmarshal(a, &doc.Adopt); err != nil || !strings.HasPrefix(doc.Adopt, PrefixDeployment+"_") {
				return doc, invalid("adopt", "must be the id of an existing deployment (depl_…) that belongs to no set")
			}
		}
	}
	if hasPaused || hasAdopt {
		var err error
		if raw, err = json.Marshal(members); err != nil {
			return doc, err
		}
	}
	in, err := DecodeCreate(raw)
	doc.Input = in
	return doc, err
}

// inDocument prefixes a document's error with its path in the request and
// names the file it came from.
func inDocument(err error, i int, source string) error {
	e, ok := err.(*Error)
	if !ok {
		return err
	}
	out := *e
	out.Field = joinPath(fmt.Sprintf("deployments[%d].definition", i), e.Field)
	out.Message = e.Message + sourceSuffix(source)
	return &out
}

func sourceSuffix(source string) string {
	if source == "" {
		return ""
	}
	return " (in " + source + ")"
}
