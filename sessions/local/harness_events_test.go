package local

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/packages/respjson"
	"github.com/sandbox0/sandbox0d/sessions/local/harness"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHarnessEventsAreCheckedAgainstTheOfficialShapes runs a command
// harness that prints events in and out of the official shapes, and reads
// the session back with the official Go SDK: what conforms is kept (its own
// ids mapped between a tool use and its result, a span's start and end),
// what does not is an agent.message holding the line as printed, and the
// list_cost a span reports is in the session's usage, not on the span.
func TestHarnessEventsAreCheckedAgainstTheOfficialShapes(t *testing.T) {
	lines := []string{
		`{"type":"agent.tool_use"}`, // no name, no input
		`{"type":"agent.tool_use","id":"tu1","name":"Bash","input":{"cmd":"ls"},"evaluated_permission":"maybe"}`,
		`{"type":"agent.tool_use","id":"tu2","name":"Bash","input":{"cmd":"ls"}}`,
		`{"type":"agent.tool_result","tool_use_id":"tu2","content":[{"type":"text","text":"a b"}],"is_error":false}`,
		`{"type":"span.model_request_start","id":"call-1"}`,
		`{"type":"span.model_request_end","model_request_start_id":"call-1","is_error":false,` +
			`"model_usage":{"input_tokens":1200,"output_tokens":300,"cache_read_input_tokens":0,"cache_creation_input_tokens":0},` +
			`"list_cost":{"amount":"2.5","currency":"USD"}}`,
		`{"type":"agent.tool_result","tool_use_id":"tu-unknown"}`, // names nothing
		`{"type":"session.error","error":{"type":"made_up_error","message":"x","retry_status":{"type":"terminal"}}}`,
		`{"type":"span.model_request_end","model_request_start_id":"call-1","is_error":"no","model_usage":{}}`,
		`{"type":"agent.message","content":[{"type":"text"}]}`,
		`{"type":"session.status_idle"}`,
	}
	script := "cat > /dev/null\n"
	for _, l := range lines {
		script += "echo '" + l + "'\n"
	}
	rig := newRig(t, []Agent{shAgent("agent_shapes", script)}, nil)
	id := rig.create("agent_shapes", nil)
	rig.waitForEvent(id, func(ev storedEvent) bool { return ev.Type == eventStatusIdle })
	rig.waitDone(id)

	ctx := t.Context()
	pager := rig.client.Beta.Sessions.Events.ListAutoPaging(ctx, id, anthropic.BetaSessionEventListParams{})
	var evs []anthropic.BetaManagedAgentsSessionEventUnion
	for pager.Next() {
		evs = append(evs, pager.Current())
	}
	require.NoError(t, pager.Err())
	// user.message, status_running, the harness's lines, status_idle.
	require.Len(t, evs, 2+len(lines)+1, rig.dump(id))
	out := evs[2 : 2+len(lines)]

	asText := func(i int) {
		t.Helper()
		require.Equal(t, "agent.message", out[i].Type, "line %d: %s", i, lines[i])
		assert.Equal(t, lines[i], messageText([]byte(out[i].RawJSON())), "the line as printed")
	}
	asText(0)
	asText(1)
	use := out[2].AsAgentToolUse()
	require.Equal(t, "agent.tool_use", out[2].Type)
	assert.Equal(t, "Bash", use.Name)
	assert.NotEqual(t, "tu2", use.ID, "an id not of the daemon's form is replaced")
	assert.True(t, strings.HasPrefix(use.ID, "sevt_"), use.ID)
	result := out[3].AsAgentToolResult()
	require.Equal(t, "agent.tool_result", out[3].Type)
	assert.Equal(t, use.ID, result.ToolUseID, "the result names the stored tool use")

	start, end := out[4].AsSpanModelRequestStart(), out[5].AsSpanModelRequestEnd()
	require.Equal(t, "span.model_request_end", out[5].Type)
	assert.NotEqual(t, "call-1", start.ID)
	assert.Equal(t, start.ID, end.ModelRequestStartID, "model_request_start_id names the stored start span")
	assert.Equal(t, int64(1200), end.ModelUsage.InputTokens)
	assert.Empty(t, end.JSON.ExtraFields, "no member the SDK does not define (list_cost)")
	assert.NotContains(t, out[5].RawJSON(), "list_cost")
	checkEveryField(t, "span.model_request_end", end.JSON)
	checkEveryField(t, "span.model_request_end.model_usage", struct {
		CacheCreationInputTokens, CacheReadInputTokens, InputTokens, OutputTokens respjson.Field
	}{end.ModelUsage.JSON.CacheCreationInputTokens, end.ModelUsage.JSON.CacheReadInputTokens,
		end.ModelUsage.JSON.InputTokens, end.ModelUsage.JSON.OutputTokens})

	asText(6)
	asText(7)
	asText(8)
	asText(9)
	asText(10)

	// The spend is in the session's usage, where the SDK has list_cost.
	sess, err := rig.client.Beta.Sessions.Get(ctx, id, anthropic.BetaSessionGetParams{})
	require.NoError(t, err)
	assert.Equal(t, "3", sess.Usage.ListCost.Amount, "2.5 cents, rounded to whole cents")
	assert.Equal(t, int64(1200), sess.Usage.InputTokens)

	// The operator's log says why, once per turn.
	assert.Equal(t, 1, strings.Count(rig.logs.String(), "not in the official shape"), rig.logs.String())
	assert.Contains(t, rig.logs.String(), "agent.tool_use: name is required")
}

func TestHarnessIDsMapWithinATurn(t *testing.T) {
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	ids := harnessIDs{}
	decode := func(raw []byte) map[string]any {
		var m map[string]any
		require.NoError(t, json.Unmarshal(raw, &m))
		return m
	}
	// An id minted with the daemon's form is kept; a reference to it too.
	own := harness.NewEventID()
	ev, err := ids.event([]byte(`{"type":"span.model_request_start","id":"`+own+`"}`), at)
	require.NoError(t, err)
	assert.Equal(t, own, decode(ev)["id"])
	ev, err = ids.event([]byte(`{"type":"span.model_request_end","model_request_start_id":"`+own+
		`","is_error":true,"model_usage":{"input_tokens":0,"output_tokens":0,"cache_read_input_tokens":0,"cache_creation_input_tokens":0}}`), at)
	require.NoError(t, err)
	assert.Equal(t, own, decode(ev)["model_request_start_id"])

	// An mcp tool use's own id maps into its result; another turn's map
	// does not know it.
	ev, err = ids.event([]byte(`{"type":"agent.mcp_tool_use","id":"m1","name":"q","mcp_server_name":"db","input":{}}`), at)
	require.NoError(t, err)
	stored := decode(ev)["id"]
	res := []byte(`{"type":"agent.mcp_tool_result","mcp_tool_use_id":"m1"}`)
	ev, err = ids.event(res, at)
	require.NoError(t, err)
	assert.Equal(t, stored, decode(ev)["mcp_tool_use_id"])
	ev, err = harnessIDs{}.event(res, at)
	require.ErrorContains(t, err, `mcp_tool_use_id "m1" names no event of this turn`)
	assert.Equal(t, "agent.message", decode(ev)["type"])
}
