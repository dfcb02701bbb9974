package deployments

import (
	"strings"
	"testing"
)

// FuzzDecodeApply: whatever the body, the plan/apply decoder returns
// documents with unique non-empty keys, each a valid create, or an *Error
// naming a field; it never panics.
func FuzzDecodeApply(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(`{"deployments":[{"key":"a.yaml","source":"a.yaml:1","definition":` + s + `}],"prune":true}`))
	}
	f.Add([]byte(`{"deployments":[{"key":"a","definition":` + fuzzSeeds[0] + `},{"key":"a","definition":` + fuzzSeeds[0] + `}]}`))
	f.Add([]byte(`{"deployments":[{"key":"a","definition":{"paused":true,"paused":false}}],"if_match":"sha256:00"}`))
	f.Add([]byte(`{"deployments":[],"force":1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeApply(body)
		if err != nil {
			checkFieldError(t, err)
			return
		}
		seen := map[string]bool{}
		for _, d := range req.Documents {
			if d.Key == "" || seen[d.Key] {
				t.Fatalf("key %q empty or repeated", d.Key)
			}
			seen[d.Key] = true
			if strings.TrimSpace(d.Input.Name) == "" || d.Input.Agent.ID == "" || len(d.Input.InitialEvents) == 0 {
				t.Fatalf("document %q decoded without a required field: %+v", d.Key, d.Input)
			}
		}
		if req.IfMatch != "" && !strings.HasPrefix(req.IfMatch, "sha256:") {
			t.Fatalf("if_match %q accepted", req.IfMatch)
		}
	})
}
