package httpapi_test

import (
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/anthropics/anthropic-sdk-go/v2/packages/param"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 12 point 10: the SDK types update metadata as `| null`; null clears
// every key, while a key set to null still deletes just that key.
func TestSDKUpdateMetadataNullClearsAllKeys(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	p := newParams("meta")
	p.Metadata = map[string]string{"a": "1", "b": "2", "c": "3"}
	d, err := e.client.Beta.Deployments.New(ctx, p)
	require.NoError(t, err)

	one, err := e.client.Beta.Deployments.Update(ctx, d.ID, anthropic.BetaDeploymentUpdateParams{},
		option.WithJSONSet("metadata.a", nil))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"b": "2", "c": "3"}, one.Metadata)

	cleared, err := e.client.Beta.Deployments.Update(ctx, d.ID, anthropic.BetaDeploymentUpdateParams{},
		option.WithJSONSet("metadata", nil))
	require.NoError(t, err)
	assert.Empty(t, cleared.Metadata)
	got, err := e.client.Beta.Deployments.Get(ctx, d.ID, anthropic.BetaDeploymentGetParams{})
	require.NoError(t, err)
	assert.Empty(t, got.Metadata, "the clear is stored")
}

// Issue 12 points 11, 12 and 16: schedule.type is required, control
// characters are refused wherever they are, and a fractional version is
// "not an integer".
func TestCreateRejectsWireFidelityProblems(t *testing.T) {
	e := newEnv(t)
	text := func(s string) func(map[string]any) {
		return func(b map[string]any) {
			b["initial_events"] = []any{map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": s}}}}
		}
	}
	cases := []struct {
		name    string
		mut     func(map[string]any)
		mention []string
	}{
		{"schedule without type", func(b map[string]any) {
			b["schedule"] = map[string]any{"expression": "0 9 * * *", "timezone": "UTC"}
		}, []string{"schedule.type", "required"}},
		{"NUL in the first user message", text("hello\x00world"), []string{"initial_events[0].content[0].text", "NUL"}},
		{"escape in a text block", text("bell\x07"), []string{"initial_events[0].content[0].text", "U+0007"}},
		{"carriage return in a text block", text("a\r\nb"), []string{"initial_events[0].content[0].text", "U+000D"}},
		{"newline in the name", func(b map[string]any) { b["name"] = "two\nlines" }, []string{"name", "U+000A"}},
		{"C1 control in the description", func(b map[string]any) { b["description"] = "x\u0085y" }, []string{"description", "U+0085"}},
		{"NUL in a metadata value", func(b map[string]any) { b["metadata"] = map[string]any{"team": "a\x00"} }, []string{"metadata.team", "NUL"}},
		{"NUL in a metadata key", func(b map[string]any) { b["metadata"] = map[string]any{"te\x00am": "a"} }, []string{"metadata", "key", "NUL"}},
		{"tab in a branch name", func(b map[string]any) {
			b["resources"] = []any{map[string]any{"type": "github_repository", "url": "https://github.com/a/b",
				"checkout": map[string]any{"type": "branch", "name": "ma\x01in"}}}
		}, []string{"resources[0].checkout.name"}},
		{"NUL in a mount path", func(b map[string]any) {
			b["resources"] = []any{map[string]any{"type": "file", "file_id": "file_1", "mount_path": "/a\x00b"}}
		}, []string{"resources[0].mount_path"}},
		{"control in budget", func(b map[string]any) {
			b["budget"] = map[string]any{"type": "limit", "max_list_cost": map[string]any{"amount": "25\x00", "currency": "USD"}}
		}, []string{"budget.max_list_cost.amount", "NUL"}},
		{"fractional agent version", func(b map[string]any) {
			b["agent"] = map[string]any{"type": "agent", "id": "agent_a", "version": 1.5}
		}, []string{"agent.version", "must be an integer, got number 1.5"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body, _ := e.raw("POST", "/v1/deployments", with(tc.mut))
			require.Equal(t, 400, status, "body: %v", body)
			assert.Equal(t, "invalid_request_error", errType(body))
			for _, m := range tc.mention {
				assert.Contains(t, errMessage(body), m)
			}
			assert.NotContains(t, errMessage(body), "must be a number")
		})
	}

	// Tab and newline are prose in text blocks, descriptions and memory store
	// instructions.
	status, body, _ := e.raw("POST", "/v1/deployments", with(func(b map[string]any) {
		text("line one\n\tline two")(b)
		b["description"] = "first\nsecond"
	}))
	require.Equal(t, 200, status, "body: %v", body)

	// The same rules on update.
	id, _ := body["id"].(string)
	status, body, _ = e.raw("POST", "/v1/deployments/"+id, map[string]any{"metadata": map[string]any{"k": "v\x1b[31m"}})
	require.Equal(t, 400, status, "body: %v", body)
	assert.Contains(t, errMessage(body), "metadata.k")
	status, body, _ = e.raw("POST", "/v1/deployments/"+id, map[string]any{"schedule": map[string]any{"expression": "0 9 * * *", "timezone": "UTC"}})
	require.Equal(t, 400, status, "body: %v", body)
	assert.Contains(t, errMessage(body), "schedule.type")
}

// Issue 12 points 13 and 14 through the official SDK: a schedule that can
// only match inside a DST gap is refused naming the zone, and timezones are
// exactly the names of the embedded tz database (the host's zoneinfo, which
// here has right/ and posix/ trees, is never consulted).
func TestSDKScheduleZoneRules(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	create := func(expr, tz string) (*anthropic.BetaManagedAgentsDeployment, error) {
		p := newParams("zone")
		p.Schedule = anthropic.BetaManagedAgentsScheduleParams{Expression: expr, Timezone: tz}
		return e.client.Beta.Deployments.New(ctx, p)
	}
	for _, tc := range []struct{ expr, tz string }{
		{"* 2 8-14 3 */7", "America/New_York"},
		{"* 2 25-31 3 */7", "Europe/Berlin"},
	} {
		_, err := create(tc.expr, tc.tz)
		var apiErr *anthropic.Error
		require.ErrorAs(t, err, &apiErr, "%s in %s", tc.expr, tc.tz)
		assert.Equal(t, 400, apiErr.StatusCode)
		assert.Contains(t, apiErr.Error(), "schedule.expression")
		// The SDK (≥ v2.18) shows error.message as sent, not the JSON-escaped body.
		assert.Contains(t, apiErr.Error(), `never fires in "`+tc.tz+`"`)
	}
	d, err := create("0-29 2 1-7 10 */7", "Australia/Lord_Howe")
	require.NoError(t, err, "fixed times inside the gap run at the transition")
	assert.NotEmpty(t, d.Schedule.UpcomingRunsAt)

	for _, tz := range []string{"right/UTC", "posix/UTC", "posix/Europe/Berlin", "Local", "localtime", "Etc/../UTC"} {
		_, err := create("0 9 * * *", tz)
		var apiErr *anthropic.Error
		require.ErrorAs(t, err, &apiErr, tz)
		assert.Equal(t, 400, apiErr.StatusCode, tz)
		assert.Contains(t, apiErr.Error(), "schedule.timezone", tz)
	}
	for _, tz := range []string{"UTC", "Etc/UTC", "America/Argentina/Buenos_Aires", "Factory", "EST5EDT"} {
		_, err := create("0 9 * * *", tz)
		require.NoError(t, err, tz)
	}
}

// Issue 12 point 15: a filter the listing does not have is a 400, not
// silently ignored (which returned everything).
func TestUnsupportedListFiltersAreErrors(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	_, err := e.client.Beta.Deployments.New(ctx, newParams("one"))
	require.NoError(t, err)

	for _, tc := range []struct{ path, mention string }{
		{"/v1/deployments?created_at[gt]=2030-01-01T00:00:00Z", "created_at[gt]: unsupported filter operator; this list supports created_at[gte], created_at[lte]"},
		{"/v1/deployments?created_at[eq]=2030-01-01T00:00:00Z", "created_at[eq]"},
		{"/v1/deployments?agentid=agent_a", "agentid: unknown query parameter"},
		{"/v1/deployments?trigger_type=manual", "trigger_type"},
		{"/v1/deployment_runs?created_at[ne]=2030-01-01T00:00:00Z", "created_at[ne]: unsupported filter operator"},
		{"/v1/deployment_runs?status=active", "status: unknown query parameter"},
	} {
		status, body, _ := e.raw("GET", tc.path, nil)
		assert.Equal(t, 400, status, "%s: %v", tc.path, body)
		assert.Contains(t, errMessage(body), tc.mention, tc.path)
	}

	// Everything the SDK sends is accepted (it adds beta=true too).
	list, err := e.client.Beta.Deployments.List(ctx, anthropic.BetaDeploymentListParams{
		AgentID: param.NewOpt("agent_a"), Limit: param.NewOpt(int64(5)), IncludeArchived: param.NewOpt(true),
		CreatedAtGte: param.NewOpt(mustTime(t, "2000-01-01T00:00:00Z")), CreatedAtLte: param.NewOpt(mustTime(t, "2100-01-01T00:00:00Z")),
	}, option.WithQuery("beta", "true"))
	require.NoError(t, err)
	assert.Len(t, list.Data, 1)
	runs, err := e.client.Beta.DeploymentRuns.List(ctx, anthropic.BetaDeploymentRunListParams{
		DeploymentID: param.NewOpt(list.Data[0].ID), HasError: param.NewOpt(false), TriggerType: "manual",
		CreatedAtGt: param.NewOpt(mustTime(t, "2000-01-01T00:00:00Z")), CreatedAtLt: param.NewOpt(mustTime(t, "2100-01-01T00:00:00Z")),
	})
	require.NoError(t, err)
	assert.Empty(t, runs.Data)
}
