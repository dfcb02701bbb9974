package httpapi_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/internal/tssdktest"
)

// The official TypeScript SDK (the version in testdata/tssdk/package.json) drives the API unchanged. Needs node
// and `npm ci --prefix testdata/tssdk` (CI does both); skipped otherwise.
func TestTypeScriptSDK(t *testing.T) {
	ts := tssdktest.Require(t)
	e := newEnv(t)
	first, err := e.svc.Create(t.Context(), mustDecode(t, "existing"))
	require.NoError(t, err)

	out := ts.Run(t, "smoke.mjs", "SANDBOX0D_URL="+e.srv.URL, "SANDBOX0D_API_KEY=sk-test")

	var got struct {
		Created struct {
			ID       string `json:"id"`
			Version  int    `json:"version"`
			Upcoming int    `json:"upcoming"`
			Raw      string `json:"raw"`
		} `json:"created"`
		Updated struct {
			Description *string           `json:"description"`
			Schedule    any               `json:"schedule"`
			Metadata    map[string]string `json:"metadata"`
		} `json:"updated"`
		Paused, Unpaused string
		Run              struct {
			ID        string `json:"id"`
			SessionID string `json:"session_id"`
			Trigger   string `json:"trigger"`
		} `json:"run"`
		RunRetrieved string   `json:"runRetrieved"`
		RequestID    string   `json:"requestId"`
		Listed       []string `json:"listed"`
		Runs         []string `json:"runs"`
		Archived     bool     `json:"archived"`
		Conflict     struct {
			Status int    `json:"status"`
			Type   string `json:"type"`
		} `json:"conflict"`
	}
	require.NoError(t, json.Unmarshal(out, &got), "%s", out)
	assert.Equal(t, 3, got.Created.Version)
	assert.Equal(t, 5, got.Created.Upcoming)
	assert.NotContains(t, got.Created.Raw, "ghp_ts_secret")
	assert.Nil(t, got.Updated.Description)
	assert.Nil(t, got.Updated.Schedule)
	assert.Equal(t, map[string]string{"b": "2", "c": "3"}, got.Updated.Metadata)
	assert.Equal(t, "paused", got.Paused)
	assert.Equal(t, "active", got.Unpaused)
	assert.Equal(t, "manual", got.Run.Trigger)
	assert.NotEmpty(t, got.Run.SessionID)
	assert.Equal(t, got.Run.ID, got.RunRetrieved)
	assert.Regexp(t, `^req_[0-9A-Za-z]{24}$`, got.RequestID, "request ids in the official alphabet")
	assert.Equal(t, []string{got.Created.ID, first.ID}, got.Listed, "auto-paging two per page, newest first")
	assert.Equal(t, []string{got.Run.ID}, got.Runs)
	assert.True(t, got.Archived)
	assert.Equal(t, 409, got.Conflict.Status)
	assert.Equal(t, "conflict_error", got.Conflict.Type)
	assert.Equal(t, "ghp_ts_secret", e.backend.Requests()[0].Resources[0].AuthorizationToken)
}
