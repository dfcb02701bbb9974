package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 24 point 9: a repeated key is refused with its path on create and
// on the tri-state update, where encoding/json kept the last value.
func TestDuplicateKeysAreRefusedWithTheirPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	status, out, h := e.raw(http.MethodPost, "/v1/deployments",
		`{"name":"a","name":"b","agent":"agent_a","environment_id":"env_1","initial_events":[{"type":"user.message","content":[{"type":"text","text":"hi"}]}]}`)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, `name: duplicate key; a JSON object may name each key once: send "name" once`, errMessage(out))
	assert.Equal(t, "false", h.Get("x-should-retry"))

	status, created, h := e.raw(http.MethodPost, "/v1/deployments", validBody())
	require.Equal(t, http.StatusOK, status, "%v", created)
	assert.Empty(t, h.Get("x-should-retry"), "a success carries no retry hint")
	id := created["id"].(string)

	status, out, _ = e.raw(http.MethodPost, "/v1/deployments/"+id,
		`{"resources":[{"type":"github_repository","url":"https://github.com/a/b","url":"https://github.com/c/d"}]}`)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, errMessage(out), "resources[0].url: duplicate key")
	status, out, _ = e.raw(http.MethodPost, "/v1/deployments/"+id, `{"metadata":{"team":"a","team":null}}`)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, errMessage(out), "metadata.team: duplicate key")
}

// A 4xx a retry cannot change says x-should-retry: false; the SDKs would
// otherwise re-send it after a dropped connection (TS 1.17) or by status.
func TestClientErrorsSayNotToRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := validBody()
	body["name"] = ""
	status, _, h := e.raw(http.MethodPost, "/v1/deployments", body)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "false", h.Get("x-should-retry"), "validation error")
	status, _, h = e.raw(http.MethodGet, "/v1/deployments/depl_missing", nil)
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "false", h.Get("x-should-retry"), "not found")
	status, _, h = e.raw(http.MethodGet, "/v1/deployments", nil, "anthropic-beta", "")
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "false", h.Get("x-should-retry"), "missing beta")
}
