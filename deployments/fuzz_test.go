package deployments

import (
	"encoding/json"
	"strings"
	"testing"
)

// The request decoders face the network: whatever the bytes, they return a
// validated input or an *Error naming a field, and never panic.

var fuzzSeeds = []string{
	`{"name":"n","agent":"agent_a","environment_id":"env","initial_events":[{"type":"user.message","content":[{"type":"text","text":"hi"}]}]}`,
	`{"name":"n","agent":{"type":"agent","id":"a","version":2},"environment_id":"e","initial_events":[{"type":"user.message","content":[{"type":"image","source":{"type":"url","url":"https://x"}}]},{"type":"system.message","content":[{"type":"text","text":"s"}]}],"resources":[{"type":"github_repository","url":"https://github.com/a/b","checkout":{"type":"commit","sha":"abcdef1"},"authorization_token":"t"},{"type":"file","file_id":"f"},{"type":"memory_store","memory_store_id":"m","access":"read_only"}],"vault_ids":["v"],"metadata":{"k":"v"},"schedule":{"type":"cron","expression":"*/5 * * * *","timezone":"UTC"}}`,
	`{"description":null,"metadata":{"a":null,"b":"c"},"schedule":null,"resources":null}`,
	`{"name":null}`, `[]`, `null`, `{}`, `{"initial_events":[{"type":"user.define_outcome"}]}`,
	`{"agent":{"id":"a","version":-1}}`, "{\"name\":\"\xff\"}", `{"schedule":{"expression":"0 0 30 2 *","timezone":"UTC"}}`,
}

func FuzzDecodeCreate(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := DecodeCreate(body)
		if err != nil {
			checkFieldError(t, err)
			return
		}
		if strings.TrimSpace(in.Name) == "" || in.Agent.ID == "" || in.EnvironmentID == "" || len(in.InitialEvents) == 0 {
			t.Fatalf("accepted an incomplete create: %+v", in)
		}
		for _, ev := range in.InitialEvents {
			if !json.Valid(ev) {
				t.Fatalf("stored event is not valid JSON: %q", ev)
			}
		}
		if len(in.Metadata) > MaxMetadataPairs || len(in.Resources) > MaxResources || len(in.VaultIDs) > MaxVaultIDs {
			t.Fatalf("accepted over limits")
		}
	})
}

func FuzzDecodeUpdate(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := DecodeUpdate(body)
		if err != nil {
			checkFieldError(t, err)
			return
		}
		if in.Name.Set && strings.TrimSpace(in.Name.Value) == "" {
			t.Fatalf("accepted an empty name")
		}
		if in.InitialEvents.Set && len(in.InitialEvents.Value) == 0 {
			t.Fatalf("accepted empty initial events")
		}
	})
}

func checkFieldError(t *testing.T, err error) {
	t.Helper()
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("decoder returned %T, want *Error: %v", err, err)
	}
	if e.Kind != KindInvalid || e.Message == "" {
		t.Fatalf("decoder error without kind or message: %+v", e)
	}
}

// FuzzControlCharPrecheck holds checkStrings' shortcut to the full walk:
// whenever mayHoldControlChars says a JSON value cannot hold a control
// character, decoding it and walking every string and key finds none.
func FuzzControlCharPrecheck(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{`"a\u0000b"`, "\"a\u0085b\"", "\"\x7f\"", `{"k\tk":1}`, "\"\u2028\"", `"é"`, `["\n"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var v any
		if json.Unmarshal(raw, &v) != nil || mayHoldControlChars(raw) {
			return
		}
		if err := walkStrings("x", v, false); err != nil {
			t.Fatalf("precheck passed %q but the walk found: %v", raw, err)
		}
	})
}
