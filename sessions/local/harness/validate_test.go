package harness

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestCheckEvent holds events to the official shapes: required members,
// JSON types and enums, per type.
func TestCheckEvent(t *testing.T) {
	usage := `"model_usage":{"input_tokens":1,"output_tokens":2,"cache_read_input_tokens":0,"cache_creation_input_tokens":0}`
	ok := []string{
		`{"type":"agent.message","content":[{"type":"text","text":"hi"},{"type":"redacted"}]}`,
		`{"type":"agent.thinking","id":"x"}`,
		`{"type":"agent.tool_use","name":"Bash","input":{},"evaluated_permission":"allow","evaluation":{"type":"always_allow"},"session_thread_id":null}`,
		`{"type":"agent.mcp_tool_use","name":"q","mcp_server_name":"db","input":{"a":1}}`,
		`{"type":"agent.tool_result","tool_use_id":"t","is_error":null,"content":[{"type":"text","text":"x"},{"type":"image","source":{"type":"base64","data":"","media_type":"image/png"}},{"type":"document","source":{"type":"text","data":"d"},"title":null},{"type":"search_result","source":"s","title":"t","citations":{"enabled":false},"content":[{"type":"text","text":"c"}]}]}`,
		`{"type":"agent.mcp_tool_result","mcp_tool_use_id":"m"}`,
		`{"type":"span.model_request_start"}`,
		`{"type":"span.model_request_end","model_request_start_id":"s","is_error":false,` + usage + `,"list_cost":{"amount":"0.81","currency":"USD"}}`,
		`{"type":"span.model_request_end","model_request_start_id":"s","is_error":true,"model_usage":{"input_tokens":1,"output_tokens":2,"cache_read_input_tokens":0,"cache_creation_input_tokens":0,"speed":"fast"}}`,
		`{"type":"session.error","error":{"type":"mcp_connection_failed_error","mcp_server_name":"db","message":"m","retry_status":{"type":"retrying"}}}`,
	}
	bad := map[string]string{
		`{"type":"agent.message"}`:                                                                                          "agent.message: content is required",
		`{"type":"agent.message","content":"hi"}`:                                                                           "content must be an array",
		`{"type":"agent.message","content":[{"type":"image"}]}`:                                                             `content[0].type is "image"`,
		`{"type":"agent.tool_use"}`:                                                                                         "name is required",
		`{"type":"agent.tool_use","name":"x"}`:                                                                              "input is required",
		`{"type":"agent.tool_use","name":"x","input":[]}`:                                                                   "input must be an object",
		`{"type":"agent.tool_use","name":"x","input":{},"evaluated_permission":"maybe"}`:                                    `evaluated_permission is "maybe"`,
		`{"type":"agent.mcp_tool_use","name":"x","input":{}}`:                                                               "mcp_server_name is required",
		`{"type":"agent.tool_result"}`:                                                                                      "tool_use_id is required",
		`{"type":"agent.tool_result","tool_use_id":"t","is_error":"yes"}`:                                                   "is_error must be true or false",
		`{"type":"agent.tool_result","tool_use_id":"t","content":[{"type":"image","source":{"type":"ftp"}}]}`:               `content[0].source.type is "ftp"`,
		`{"type":"span.model_request_end","model_request_start_id":"s","is_error":false}`:                                   "model_usage is required",
		`{"type":"span.model_request_end","model_request_start_id":"s","is_error":false,"model_usage":{"input_tokens":-1}}`: "model_usage.input_tokens must be a non-negative integer",
		`{"type":"span.model_request_end","model_request_start_id":"s",` + usage + `}`:                                      "is_error is required",
		`{"type":"span.model_request_end","model_request_start_id":"s","is_error":false,` + usage + `,"list_cost":{"amount":"1e3","currency":"USD"}}`: "list_cost.amount must be a decimal string",
		`{"type":"span.model_request_end","model_request_start_id":"s","is_error":false,` + usage + `,"list_cost":{"amount":"1","currency":"EUR"}}`:   "list_cost.currency",
		`{"type":"session.error","error":{"type":"unknown_error","message":"m"}}`:                                                                     "error.retry_status is required",
		`{"type":"session.error","error":{"type":"nope","message":"m","retry_status":{"type":"terminal"}}}`:                                           `error.type is "nope"`,
		`{"type":"session.error","error":{"type":"repository_clone_error","message":"m","retry_status":{"type":"terminal"}}}`:                         "error.repository_url is required",
		`{"type":"session.status_idle"}`:   "not an event a harness may emit",
		`{"type":"session.usage"}`:         "not an event a harness may emit",
		`{"type":3}`:                       "type: must be a string",
		`{"type":"agent.thinking","id":7}`: "id must be a string",
	}
	check := func(line string) error {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatal(line, err)
		}
		_, err := CheckEvent(obj)
		return err
	}
	for _, line := range ok {
		if err := check(line); err != nil {
			t.Errorf("%s: %v", line, err)
		}
	}
	for line, want := range bad {
		if err := check(line); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one saying %q", line, err, want)
		}
	}
}
