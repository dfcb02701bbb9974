package local

import (
	"encoding/json"
	"github.com/sandbox0/sandbox0d/sessions/local/harness"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHarnessLineEvent(t *testing.T) {
	at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		line     string
		wantType string
		wantText string // for agent.message
		wantKept string // a field kept from the line
	}{
		{"plain text", "hello world", "agent.message", "hello world", ""},
		{"agent message json", `{"type":"agent.message","content":[{"type":"text","text":"hi"}]}`, "agent.message", "hi", ""},
		{"thinking json keeps its fields", `{"type":"agent.thinking","thinking":"hmm","extra":1}`, "agent.thinking", "", "thinking"},
		{"harness error event", `{"type":"session.error","error":{"type":"unknown_error","message":"x","retry_status":{"type":"terminal"}}}`, "session.error", "", "error"},
		{"error without retry_status", `{"type":"session.error","error":{"type":"unknown_error","message":"x"}}`, "agent.message", `{"type":"session.error","error":{"type":"unknown_error","message":"x"}}`, ""},
		{"tool use without name and input", `{"type":"agent.tool_use"}`, "agent.message", `{"type":"agent.tool_use"}`, ""},
		{"bad enum", `{"type":"agent.tool_use","name":"x","input":{},"evaluated_permission":"maybe"}`, "agent.message", `{"type":"agent.tool_use","name":"x","input":{},"evaluated_permission":"maybe"}`, ""},
		{"a thread event is not a harness's", `{"type":"session.thread_created"}`, "agent.message", `{"type":"session.thread_created"}`, ""},
		{"status events are the daemon's", `{"type":"session.status_idle"}`, "agent.message", `{"type":"session.status_idle"}`, ""},
		{"user input is the user's", `{"type":"user.message","content":[]}`, "agent.message", `{"type":"user.message","content":[]}`, ""},
		{"unknown type", `{"type":"made.up"}`, "agent.message", `{"type":"made.up"}`, ""},
		{"not json", `{not json`, "agent.message", `{not json`, ""},
		{"json array", `[1,2]`, "agent.message", `[1,2]`, ""},
		{"invalid utf-8", "caf\xe9", "agent.message", "caf\uFFFD", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := harnessEvent(harness.LineEvent([]byte(tt.line)), at)
			var ev map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(raw, &ev))
			var head eventHeader
			require.NoError(t, json.Unmarshal(raw, &head))
			assert.Equal(t, tt.wantType, head.Type)
			assert.Equal(t, at, head.ProcessedAt)
			assert.Contains(t, string(ev["id"]), `"sevt_`)
			if tt.wantText != "" {
				assert.Equal(t, tt.wantText, messageText(raw))
			}
			if tt.wantKept != "" {
				assert.Contains(t, ev, tt.wantKept)
			}
			// Every event parses with the official SDK's union.
			var parsed anthropic.BetaManagedAgentsSessionEventUnion
			require.NoError(t, json.Unmarshal(raw, &parsed))
			assert.Equal(t, tt.wantType, parsed.Type)
		})
	}
}

// TestTextMessageEventEncodesAsTheGenericPath: a plain text line recorded
// through EmitText (textMessageEvent's struct) is byte for byte the event
// the map encoding and the JSON path (harnessEvent of harness.TextMessage)
// give, for text that needs escaping too.
func TestTextMessageEventEncodesAsTheGenericPath(t *testing.T) {
	at := time.Date(2026, 11, 28, 9, 0, 0, 123456789, time.FixedZone("x", 3600))
	withoutID := func(ev []byte) string {
		var head struct{ ID string }
		require.NoError(t, json.Unmarshal(ev, &head))
		require.NotEmpty(t, head.ID)
		return strings.Replace(string(ev), head.ID, "sevt_ID", 1)
	}
	for _, text := range []string{"", "hello world", `quote " backslash \ <b>&amp;</b>`, "tab\t nl\n cr\r \x01 \x7f",
		"café \u2028 \u2029 \U0001F600", "{\"type\":\"agent.message\"}"} {
		got := withoutID(textMessageEvent(text, at))
		generic := withoutID(newEvent(eventAgentMessage, at, map[string]any{
			"content": []map[string]string{{"type": "text", "text": text}},
		}))
		viaJSON := withoutID(harnessEvent(harness.TextMessage(text), at))
		assert.Equal(t, generic, got, "%q", text)
		assert.Equal(t, viaJSON, got, "%q", text)
		assert.Equal(t, text, messageText([]byte(got)))
	}
}

func TestHarnessCannotChooseEventIDs(t *testing.T) {
	a := harnessEvent([]byte(`{"type":"agent.message","id":"evt_same","content":[]}`), time.Now())
	b := harnessEvent([]byte(`{"type":"agent.message","id":"evt_same","content":[]}`), time.Now())
	var ea, eb struct{ ID string }
	require.NoError(t, json.Unmarshal(a, &ea))
	require.NoError(t, json.Unmarshal(b, &eb))
	assert.NotEqual(t, ea.ID, eb.ID)
	assert.NotEqual(t, "evt_same", ea.ID)
}

func TestParseEnvFile(t *testing.T) {
	vars, err := parseEnvFile([]byte("# comment\n\nA=1\nexport B = two words \nC=\"quoted\"\nD='single'\nE=\nF=a=b\n"))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"A": "1", "B": "two words", "C": "quoted", "D": "single", "E": "", "F": "a=b"}, vars)

	for _, bad := range []string{"no equals sign\n", "=value\n", "A B=c\n"} {
		_, err := parseEnvFile([]byte("SECRET=hunter2\n" + bad))
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "line 2")
		assert.NotContains(t, err.Error(), "hunter2", "parse errors never quote values")
	}
}
