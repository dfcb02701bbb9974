package cli

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunsListGolden(t *testing.T) {
	f := newFleet(t)
	cases := []struct {
		golden string
		args   []string
	}{
		{"all", []string{"runs", "list"}},
		{"errors", []string{"runs", "list", "--errors"}},
		{"schedule", []string{"runs", "list", "--trigger", "schedule"}},
		{"one_deployment", []string{"runs", "list", "--deployment", f.triage}},
	}
	for _, tc := range cases {
		t.Run(tc.golden, func(t *testing.T) {
			res := f.cli(tc.args...)
			require.NoError(t, res.err)
			assertGolden(t, tc.golden, f.stable(res.stdout))
		})
	}
}

func TestRunsGetGolden(t *testing.T) {
	f := newFleet(t)
	for _, label := range []string{"nightly_run", "digest_run"} {
		t.Run(label, func(t *testing.T) {
			res := f.cli("runs", "get", f.idOf(label))
			require.NoError(t, res.err)
			assertGolden(t, label, f.stable(res.stdout))
		})
	}
}

func TestRunsListJSON(t *testing.T) {
	f := newFleet(t)
	res := f.cli("--json", "runs", "list", "--errors")
	require.NoError(t, res.err)
	var out struct {
		Data []struct {
			Type           string         `json:"type"`
			ID             string         `json:"id"`
			DeploymentID   string         `json:"deployment_id"`
			TriggerContext map[string]any `json:"trigger_context"`
			SessionID      *string        `json:"session_id"`
			Error          *struct {
				Type, Message string
			} `json:"error"`
		} `json:"data"`
		NextPage *string `json:"next_page"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &out), res.stdout)
	require.Len(t, out.Data, 2)
	for _, r := range out.Data {
		assert.Equal(t, "deployment_run", r.Type)
		assert.Nil(t, r.SessionID)
		require.NotNil(t, r.Error)
	}
	assert.Equal(t, "session_rate_limited_error", out.Data[0].Error.Type, "newest first")
	assert.Equal(t, map[string]any{"type": "schedule", "scheduled_at": "2026-11-30T09:45:00Z"}, out.Data[1].TriggerContext)
}
