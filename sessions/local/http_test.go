package local

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sandbox0/sandbox0d/internal/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// call sends a raw request to the rig's server and decodes the JSON reply.
func (r *testRig) call(method, path, body string, out any) *http.Response {
	r.t.Helper()
	req, err := http.NewRequestWithContext(r.t.Context(), method, r.srv.URL+path, strings.NewReader(body))
	require.NoError(r.t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(r.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(r.t, err)
	if out != nil {
		require.NoError(r.t, json.Unmarshal(data, out), "%s %s: %s", method, path, data)
	}
	return resp
}

func TestErrorEnvelopes(t *testing.T) {
	rig := newRig(t, []Agent{shAgent("agent_quick", "echo hi")}, nil)
	id := rig.create("agent_quick", nil)
	other := rig.create("agent_quick", nil)
	rig.waitDone(id)
	rig.waitDone(other)
	var page eventListResponse
	rig.call("GET", "/v1/sessions/"+other+"/events?limit=1", "", &page)
	require.NotNil(t, page.NextPage)
	foreignCursor := url.QueryEscape(*page.NextPage)
	// The same token with one payload character changed: the MAC refuses it.
	tampered := []byte(*page.NextPage)
	tampered[12] ^= 'A' ^ 'B'

	tests := []struct {
		method, path, body string
		wantStatus         int
		wantMessage        string
	}{
		{"GET", "/v1/models", "", 404, "not a route of the local session backend"},
		{"GET", "/v1/sessionsx", "", 404, "not a route"},
		{"POST", "/v1/sessions", `{}`, 400, "agent: is required"},
		{"POST", "/v1/sessions", `{"agent":"agent_quick","environment_id":"env_nope"}`, 400, "environment_id"},
		{"POST", "/v1/sessions", `{"agent":"agent_quick","environment_id":"env_test","resources":[{"type":"github_repository"}]}`, 400, "resources[0].url"},
		{"POST", "/v1/sessions", `{"agent":{"type":"agent","id":"agent_quick","version":7},"environment_id":"env_test"}`, 400, "agent"},
		{"POST", "/v1/sessions/" + id, `{"title":7}`, 400, "title"},
		{"POST", "/v1/sessions/" + id, `{"vault_ids":[]}`, 400, "vault_ids"},
		{"POST", "/v1/agents", `{"name":"x"}`, 400, "model: is required"},
		{"POST", "/v1/agents", `{"name":"x","model":"m","multiagent":{"type":"coordinator"}}`, 400, "multiagent"},
		{"POST", "/v1/agents", `{"name":"x","model":"m","tools":[{"type":"agent_toolset_20260401","configs":[{"name":"bash","permission_policy":{"type":"always_ask"}}]}]}`,
			400, "tools[0].configs[0].permission_policy.type: always_ask"},
		{"POST", "/v1/agents", `{"name":"x","model":"m","colour":"blue"}`, 400, "colour: unknown field"},
		{"POST", "/v1/environments", `{"name":"x","config":{"type":"cloud","packages":{"pip":["requests"]}}}`, 400, "config.packages.pip: package installs are not available"},
		{"POST", "/v1/environments", `{"name":"x","config":{"type":"cloud","networking":{"type":"limited","allowed_hosts":["a b"]}}}`, 400, "config.networking.allowed_hosts[0]"},
		{"DELETE", "/v1/vaults/vlt_x", ``, 404, `vault "vlt_x" was not found`},
		{"GET", "/v1/environments/env_nope", ``, 404, "env_nope"},
		{"PUT", "/v1/sessions/" + id, "", 404, "not a route"},
		{"GET", "/v1/sessions/" + id + "/nope", "", 404, "not a route"},
		{"GET", "/v1/sessions/sesn_doesnotexist", "", 404, `session "sesn_doesnotexist" was not found`},
		{"GET", "/v1/sessions/" + newID(sessionIDPrefix) + "/events", "", 404, "was not found"},
		{"GET", "/v1/sessions/../etc", "", 404, ""},
		{"POST", "/v1/sessions/" + id + "/events", `{"events":[{"type":"user.message","content":[]}]}`, 400,
			"events[0].content"},
		{"POST", "/v1/sessions/" + id + "/events", `{"events":[{"type":"user.tool_confirmation"}]}`, 400,
			"events[0].type: user.tool_confirmation cannot be sent to a local session"},
		{"POST", "/v1/sessions/" + id + "/events", `{"events":[]}`, 400, "at least one event"},
		{"POST", "/v1/sessions/" + id + "/events", `not json`, 400, "JSON object with an events array"},
		{"GET", "/v1/sessions?limit=0", "", 400, "limit"},
		{"GET", "/v1/sessions?limit=101", "", 400, "limit"},
		{"GET", "/v1/sessions?statuses%5B%5D=sleeping", "", 400, "statuses"},
		{"GET", "/v1/sessions?order=sideways", "", 400, "order"},
		{"GET", "/v1/sessions?created_at%5Bgte%5D=yesterday", "", 400, "created_at[gte]"},
		{"GET", "/v1/sessions?include_archived=maybe", "", 400, "include_archived"},
		{"GET", "/v1/sessions?page=garbage", "", 400, "page"},
		{"GET", "/v1/sessions?page=" + foreignCursor, "", 400, "page"},
		{"GET", "/v1/sessions/" + id + "/events?page=" + foreignCursor, "", 400, "invalid cursor"},                              // the signed scope names the session,
		{"GET", "/v1/sessions/" + other + "/events?order=desc&page=" + foreignCursor, "", 400, "invalid cursor"},                // ... and the order,
		{"GET", "/v1/sessions/" + other + "/events?types%5B%5D=agent.message&page=" + foreignCursor, "", 400, "invalid cursor"}, // ... and the filters
		{"GET", "/v1/sessions/" + other + "/events?page=" + url.QueryEscape(string(tampered)), "", 400, "invalid cursor"},       // ... and is signed
		{"GET", "/v1/sessions/" + id + "/events?types%5B%5D=nope", "", 400, "types"},
		{"GET", "/v1/sessions/" + id + "/events?limit=1001", "", 400, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			var body wire.ErrorBody
			resp := rig.call(tt.method, tt.path, tt.body, &body)
			assert.Equal(t, tt.wantStatus, resp.StatusCode)
			assert.Equal(t, "error", body.Type)
			assert.Equal(t, wire.KindForStatus(tt.wantStatus), body.Error.Type)
			assert.Contains(t, body.Error.Message, tt.wantMessage)
			assert.NotEmpty(t, body.RequestID)
			assert.Equal(t, body.RequestID, resp.Header.Get(wire.RequestIDHeader))
		})
	}
}

func TestSessionListPagination(t *testing.T) {
	clock := &tickingClock{t: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)}
	rig := newRig(t, []Agent{shAgent("agent_quick", "echo hi")}, func(c *Config) { c.Now = clock.Now })
	var ids []string // oldest first
	for i := 0; i < 5; i++ {
		id := rig.create("agent_quick", nil)
		rig.waitDone(id)
		ids = append(ids, id)
	}
	page := func(query string) (got []string, next, prev *string) {
		var resp sessionListResponse
		r := rig.call("GET", "/v1/sessions?"+query, "", &resp)
		require.Equal(t, 200, r.StatusCode)
		for _, s := range resp.Data {
			got = append(got, s.ID)
		}
		return got, resp.NextPage, resp.PrevPage
	}
	cursor := func(c *string) string { require.NotNil(t, c); return "&page=" + url.QueryEscape(*c) }

	// Newest first, forward.
	p1, next, prev := page("limit=2")
	assert.Equal(t, []string{ids[4], ids[3]}, p1)
	assert.Nil(t, prev)
	p2, next, prev2 := page("limit=2" + cursor(next))
	assert.Equal(t, []string{ids[2], ids[1]}, p2)
	p3, next3, prev3 := page("limit=2" + cursor(next))
	assert.Equal(t, []string{ids[0]}, p3)
	assert.Nil(t, next3)

	// And back.
	back2, _, _ := page("limit=2" + cursor(prev3))
	assert.Equal(t, p2, back2)
	back1, forward, backPrev := page("limit=2" + cursor(prev2))
	assert.Equal(t, p1, back1)
	assert.Nil(t, backPrev, "nothing is newer than the first page")
	again, _, _ := page("limit=2" + cursor(forward))
	assert.Equal(t, p2, again)

	// Oldest first.
	asc, ascNext, _ := page("order=asc&limit=3")
	assert.Equal(t, ids[:3], asc)
	asc2, _, _ := page("order=asc&limit=3" + cursor(ascNext))
	assert.Equal(t, ids[3:], asc2)
	var env wire.ErrorBody
	assert.Equal(t, 400, rig.call("GET", "/v1/sessions?order=desc"+cursor(ascNext), "", &env).StatusCode,
		"a cursor keeps the order it was made for")

	// Archived sessions are hidden unless asked for.
	rig.call("POST", "/v1/sessions/"+ids[2]+"/archive", "", nil)
	all, _, _ := page("limit=100")
	assert.NotContains(t, all, ids[2])
	withArchived, _, _ := page("limit=100&include_archived=true")
	assert.Contains(t, withArchived, ids[2])

	// Filters.
	byTime, _, _ := page("created_at%5Bgt%5D=" + url.QueryEscape(mustGet(t, rig, ids[3]).CreatedAt.Format(time.RFC3339Nano)))
	assert.Equal(t, []string{ids[4]}, byTime)
	none, next, _ := page("statuses%5B%5D=running&statuses%5B%5D=rescheduling")
	assert.Empty(t, none)
	assert.Nil(t, next)
	idle, _, _ := page("statuses=idle&agent_id=agent_quick&agent_version=1&limit=100")
	assert.Len(t, idle, 4)
	noStore, _, _ := page("memory_store_id=memstore_1")
	assert.Empty(t, noStore)
}
