package cli

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDeploymentsListGolden(t *testing.T) {
	f := newFleet(t)
	cases := []struct {
		golden string
		args   []string
	}{
		{"default", []string{"deployments", "list"}},
		{"all", []string{"deployments", "list", "--all"}},
		{"paused", []string{"deployments", "list", "--status", "paused"}},
		{"limit", []string{"deployments", "list", "--all", "--limit", "2"}},
	}
	for _, tc := range cases {
		t.Run(tc.golden, func(t *testing.T) {
			res := f.cli(tc.args...)
			require.NoError(t, res.err)
			assertGolden(t, tc.golden, f.stable(res.stdout))
		})
	}
}

func TestDeploymentsListJSON(t *testing.T) {
	f := newFleet(t)
	res := f.cli("--json", "deployments", "list", "--all")
	require.NoError(t, res.err)
	var out struct {
		Data []struct {
			ID       string `json:"id"`
			Type     string `json:"type"`
			Name     string `json:"name"`
			Status   string `json:"status"`
			Schedule *struct {
				Expression     string   `json:"expression"`
				UpcomingRunsAt []string `json:"upcoming_runs_at"`
			} `json:"schedule"`
			PausedReason map[string]any `json:"paused_reason"`
			ArchivedAt   *string        `json:"archived_at"`
		} `json:"data"`
		NextPage *string `json:"next_page"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &out), res.stdout)
	require.Len(t, out.Data, 5)
	assert.Nil(t, out.NextPage, "the whole listing was read")
	byID := map[string]int{}
	for i, d := range out.Data {
		assert.Equal(t, "deployment", d.Type)
		byID[d.ID] = i
	}
	nightly := out.Data[byID[f.nightly]]
	assert.Equal(t, "paused", nightly.Status)
	assert.Equal(t, map[string]any{"type": "error", "error": map[string]any{"type": "environment_not_found_error"}}, nightly.PausedReason)
	require.NotNil(t, nightly.Schedule)
	assert.Equal(t, "2026-11-30T10:15:00Z", nightly.Schedule.UpcomingRunsAt[0])
	assert.NotNil(t, out.Data[byID[f.cleanup]].ArchivedAt)
	assert.Nil(t, out.Data[byID[f.triage]].Schedule)

	// A limited listing keeps the API's cursor, so it can be resumed.
	res = f.cli("--json", "deployments", "list", "--limit", "2")
	require.NoError(t, res.err)
	out.NextPage = nil
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &out))
	assert.Len(t, out.Data, 2)
	assert.NotNil(t, out.NextPage)
}
