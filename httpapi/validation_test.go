package httpapi_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func with(mut func(b map[string]any)) map[string]any {
	b := validBody()
	mut(b)
	return b
}

func events(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": "x"}}}
	}
	return out
}

func TestCreateValidationTable(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("x", 600)
	meta17 := map[string]any{}
	for i := range 17 {
		meta17[string(rune('a'+i))] = "v"
	}
	resources := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = map[string]any{"type": "file", "file_id": "file_1"}
		}
		return out
	}
	vaults := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = "vlt_" + strings.Repeat("v", i+1)
		}
		return out
	}
	sched := func(expr, tz string) func(map[string]any) {
		return func(b map[string]any) {
			b["schedule"] = map[string]any{"type": "cron", "expression": expr, "timezone": tz}
		}
	}
	cases := []struct {
		name    string
		body    any
		status  int
		kind    string
		mention string
	}{
		{"empty body", "", 400, "invalid_request_error", "empty"},
		{"bad json", "{", 400, "invalid_request_error", "malformed"},
		{"array body", "[]", 400, "invalid_request_error", ""},
		{"trailing data", `{"name":"x"} {}`, 400, "invalid_request_error", "trailing"},
		{"invalid utf8", "{\"name\":\"\xff\"}", 400, "invalid_request_error", "UTF-8"},
		{"unknown field", with(func(b map[string]any) { b["nmae"] = "x" }), 400, "invalid_request_error", "nmae"},
		{"missing name", with(func(b map[string]any) { delete(b, "name") }), 400, "invalid_request_error", "name"},
		{"empty name", with(func(b map[string]any) { b["name"] = "  " }), 400, "invalid_request_error", "name"},
		{"name wrong type", with(func(b map[string]any) { b["name"] = 5 }), 400, "invalid_request_error", "name"},
		{"missing agent", with(func(b map[string]any) { delete(b, "agent") }), 400, "invalid_request_error", "agent"},
		{"unknown agent", with(func(b map[string]any) { b["agent"] = "agent_nope" }), 400, "invalid_request_error", "agent_nope"},
		{"agent version too new", with(func(b map[string]any) { b["agent"] = map[string]any{"type": "agent", "id": "agent_a", "version": 9} }), 400, "invalid_request_error", "agent"},
		{"agent bad type", with(func(b map[string]any) { b["agent"] = map[string]any{"type": "bot", "id": "agent_a"} }), 400, "invalid_request_error", "agent.type"},
		{"missing environment", with(func(b map[string]any) { delete(b, "environment_id") }), 400, "invalid_request_error", "environment_id"},
		{"unknown environment", with(func(b map[string]any) { b["environment_id"] = "env_missing" }), 400, "invalid_request_error", "env_missing"},
		{"no initial events", with(func(b map[string]any) { b["initial_events"] = []any{} }), 400, "invalid_request_error", "initial_events"},
		{"51 initial events", with(func(b map[string]any) { b["initial_events"] = events(51) }), 400, "invalid_request_error", "at most 50"},
		{"define outcome", with(func(b map[string]any) {
			b["initial_events"] = append(events(1), map[string]any{"type": "user.define_outcome", "description": "d"})
		}), 400, "invalid_request_error", "outcomes are not implemented"},
		{"system message first", with(func(b map[string]any) {
			b["initial_events"] = []any{map[string]any{"type": "system.message", "content": []any{map[string]any{"type": "text", "text": "s"}}}}
		}), 400, "invalid_request_error", "initial_events[0]"},
		{"system message not last", with(func(b map[string]any) {
			b["initial_events"] = append([]any{events(1)[0], map[string]any{"type": "system.message", "content": []any{map[string]any{"type": "text", "text": "s"}}}}, events(1)...)
		}), 400, "invalid_request_error", "initial_events[1]"},
		{"empty text", with(func(b map[string]any) {
			b["initial_events"] = []any{map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": ""}}}}
		}), 400, "invalid_request_error", "initial_events[0].content[0].text"},
		{"unknown block", with(func(b map[string]any) {
			b["initial_events"] = []any{map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "video"}}}}
		}), 400, "invalid_request_error", "initial_events[0].content[0].type"},
		{"unknown resource type", with(func(b map[string]any) { b["resources"] = []any{map[string]any{"type": "s3_bucket"}} }), 400, "invalid_request_error", "resources[0].type"},
		{"repo without url", with(func(b map[string]any) { b["resources"] = []any{map[string]any{"type": "github_repository"}} }), 400, "invalid_request_error", "resources[0].url"},
		{"repo bad checkout", with(func(b map[string]any) {
			b["resources"] = []any{map[string]any{"type": "github_repository", "url": "https://github.com/a/b", "checkout": map[string]any{"type": "tag", "name": "v1"}}}
		}), 400, "invalid_request_error", "resources[0].checkout.type"},
		{"repo url not echoed", with(func(b map[string]any) {
			b["resources"] = []any{map[string]any{"type": "github_repository", "url": "ghp_pasted_secret@github.com/a/b"}}
		}), 400, "invalid_request_error", "resources[0].url"},
		{"token over plain http", with(func(b map[string]any) {
			b["resources"] = []any{map[string]any{"type": "github_repository", "url": "http://git.example/a/b", "authorization_token": "t"}}
		}), 400, "invalid_request_error", "must use https"},
		{"501 resources", with(func(b map[string]any) { b["resources"] = resources(501) }), 400, "invalid_request_error", "at most 500"},
		{"51 vaults", with(func(b map[string]any) { b["vault_ids"] = vaults(51) }), 400, "invalid_request_error", "at most 50"},
		{"17 metadata pairs", with(func(b map[string]any) { b["metadata"] = meta17 }), 400, "invalid_request_error", "at most 16"},
		{"metadata key too long", with(func(b map[string]any) { b["metadata"] = map[string]any{long[:65]: "v"} }), 400, "invalid_request_error", "at most 64"},
		{"metadata value too long", with(func(b map[string]any) { b["metadata"] = map[string]any{"k": long} }), 400, "invalid_request_error", "at most 512"},
		{"metadata non-string", with(func(b map[string]any) { b["metadata"] = map[string]any{"k": 1} }), 400, "invalid_request_error", "metadata"},
		{"six cron fields", with(sched("0 0 9 * * 1", "UTC")), 400, "invalid_request_error", "6 fields given, exactly 5 required"},
		{"seven cron fields", with(sched("0 0 9 * * 1 2026", "UTC")), 400, "invalid_request_error", "schedule.expression"},
		{"cron shortcut", with(sched("@daily", "UTC")), 400, "invalid_request_error", "schedule.expression"},
		{"quartz question mark", with(sched("0 9 ? * 1", "UTC")), 400, "invalid_request_error", "schedule.expression"},
		{"quartz L", with(sched("0 9 L * *", "UTC")), 400, "invalid_request_error", "schedule.expression"},
		{"quartz W", with(sched("0 9 15W * *", "UTC")), 400, "invalid_request_error", "schedule.expression"},
		{"quartz hash", with(sched("0 9 * * 1#2", "UTC")), 400, "invalid_request_error", "schedule.expression"},
		{"hour out of range", with(sched("0 25 * * *", "UTC")), 400, "invalid_request_error", "hour"},
		{"minute out of range", with(sched("60 * * * *", "UTC")), 400, "invalid_request_error", "minute"},
		{"dow out of range", with(sched("0 0 * * 8", "UTC")), 400, "invalid_request_error", "day-of-week"},
		{"never fires", with(sched("0 0 30 2 *", "UTC")), 400, "invalid_request_error", "never"},
		{"descending range", with(sched("0 5-1 * * *", "UTC")), 400, "invalid_request_error", "hour"},
		{"bad timezone", with(sched("0 9 * * *", "Mars/Olympus")), 400, "invalid_request_error", "schedule.timezone"},
		{"missing timezone", with(func(b map[string]any) { b["schedule"] = map[string]any{"type": "cron", "expression": "0 9 * * *"} }), 400, "invalid_request_error", "schedule.timezone"},
		{"schedule wrong type", with(func(b map[string]any) {
			b["schedule"] = map[string]any{"type": "rate", "expression": "0 9 * * *", "timezone": "UTC"}
		}), 400, "invalid_request_error", "schedule.type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body, hdr := e.raw("POST", "/v1/deployments", tc.body)
			assert.Equal(t, tc.status, status, "body: %v", body)
			assert.Equal(t, "error", body["type"])
			assert.Equal(t, tc.kind, errType(body))
			assert.Contains(t, errMessage(body), tc.mention)
			assert.NotContains(t, errMessage(body), "ghp_pasted_secret")
			assert.Regexp(t, `^req_[0-9A-Za-z]{24}$`, hdr.Get("request-id"), "the official id alphabet")
			assert.Equal(t, hdr.Get("request-id"), body["request_id"])
		})
	}
	// Nothing was written by any rejected request.
	status, body, _ := e.raw("GET", "/v1/deployments?include_archived=true", nil)
	require.Equal(t, 200, status)
	assert.Empty(t, body["data"])
}

func TestRequestLevelErrors(t *testing.T) {
	// Parallel: after the 413 the server closes the connection the way
	// net/http does after a body over the limit, waiting 500 ms before the
	// close (rstAvoidanceDelay), and closing the test server waits for that.
	t.Parallel()
	e := newEnv(t)
	status, body, _ := e.raw("POST", "/v1/deployments", validBody())
	require.Equal(t, 200, status, "%v", body)
	id := body["id"].(string)

	cases := []struct {
		name, method, path string
		body               any
		headers            []string
		status             int
		kind, mention      string
	}{
		{"missing beta header", "GET", "/v1/deployments", nil, []string{"anthropic-beta", ""}, 400, "invalid_request_error", "managed-agents-2026-04-01"},
		{"other betas only", "GET", "/v1/deployments", nil, []string{"anthropic-beta", "files-api-2025-04-14"}, 400, "invalid_request_error", "anthropic-beta"},
		{"bad cursor", "GET", "/v1/deployments?page=garbage", nil, nil, 400, "invalid_request_error", "page"},
		{"status with include_archived", "GET", "/v1/deployments?status=active&include_archived=true", nil, nil, 400, "invalid_request_error", "include_archived"},
		{"bad status", "GET", "/v1/deployments?status=running", nil, nil, 400, "invalid_request_error", "status"},
		{"limit too big", "GET", "/v1/deployments?limit=101", nil, nil, 400, "invalid_request_error", "limit"},
		{"limit zero", "GET", "/v1/deployments?limit=0", nil, nil, 400, "invalid_request_error", "limit"},
		{"runs limit too big", "GET", "/v1/deployment_runs?limit=1001", nil, nil, 400, "invalid_request_error", "limit"},
		{"bad time", "GET", "/v1/deployments?created_at%5Bgte%5D=yesterday", nil, nil, 400, "invalid_request_error", "created_at[gte]"},
		{"bad bool", "GET", "/v1/deployment_runs?has_error=yes", nil, nil, 400, "invalid_request_error", "has_error"},
		{"bad trigger", "GET", "/v1/deployment_runs?trigger_type=cron", nil, nil, 400, "invalid_request_error", "trigger_type"},
		{"unknown deployment", "GET", "/v1/deployments/depl_nope", nil, nil, 404, "not_found_error", "depl_nope"},
		{"unknown run", "GET", "/v1/deployment_runs/drun_nope", nil, nil, 404, "not_found_error", "drun_nope"},
		{"unknown route", "GET", "/v1/nothing", nil, nil, 404, "not_found_error", "/v1/nothing"},
		{"pause with params", "POST", "/v1/deployments/" + id + "/pause", map[string]any{"reason": "x"}, nil, 400, "invalid_request_error", "reason"},
		{"wrong content type", "POST", "/v1/deployments", "name=x", []string{"Content-Type", "application/x-www-form-urlencoded"}, 400, "invalid_request_error", "Content-Type"},
		{"too large", "POST", "/v1/deployments", strings.Repeat(" ", 1<<20+1), nil, 413, "request_too_large", "bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body, hdr := e.raw(tc.method, tc.path, tc.body, tc.headers...)
			assert.Equal(t, tc.status, status, "body: %v", body)
			assert.Equal(t, tc.kind, errType(body))
			assert.Contains(t, errMessage(body), tc.mention)
			assert.NotEmpty(t, hdr.Get("request-id"))
		})
	}

	// Action endpoints accept no body, an empty body and {}.
	for _, b := range []any{nil, "", "{}"} {
		status, body, _ := e.raw("POST", "/v1/deployments/"+id+"/pause", b)
		assert.Equal(t, 200, status, "%v", body)
	}
	// A cursor from another listing or other filters is refused.
	status, body, _ = e.raw("POST", "/v1/deployments", validBody())
	require.Equal(t, 200, status)
	status, body, _ = e.raw("GET", "/v1/deployments?limit=1", nil)
	require.Equal(t, 200, status)
	cursor := body["next_page"].(string)
	status, _, _ = e.raw("GET", "/v1/deployments?limit=1&page="+cursor, nil)
	assert.Equal(t, 200, status)
	status, body, _ = e.raw("GET", "/v1/deployments?limit=1&agent_id=agent_a&page="+cursor, nil)
	assert.Equal(t, 400, status, "cursor with other filters")
	status, _, _ = e.raw("GET", "/v1/deployment_runs?page="+cursor, nil)
	assert.Equal(t, 400, status, "cursor from another listing")
	// The incoming request id is reused; ?beta=true is ignored.
	_, _, hdr := e.raw("GET", "/v1/deployments?beta=true", nil, "X-Request-Id", "req_fromclient")
	assert.Equal(t, "req_fromclient", hdr.Get("request-id"))
}
