package daemon_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The leader node dies between its fires' intents and their records: the
// sessions were created, the records never committed. Once its lease has
// expired, the next leader resolves each of its intents exactly once: one
// run per deployment for the minute, recorded as interrupted (this backend
// cannot say whether a session exists; the upstream one can, tested in
// deployments/upstream_recover_test.go), and no session created again; a
// later leader finds nothing left to resolve.
func TestClusterLeaderDiesBetweenIntentAndRecord(t *testing.T) {
	rig := newClusterRig(t, 3)
	c := rig.nodes[0].client()
	var ids []string
	for i := range 40 { // a burst: its records need more than one etcd transaction (--max-txn-ops 128)
		dep, err := c.Beta.Deployments.New(t.Context(), minutelyParams(fmt.Sprint("dies", i)))
		require.NoError(t, err)
		ids = append(ids, dep.ID)
	}
	lead := rig.leader(t, rig.nodes)
	before := rig.backend.Created()
	rig.backend.close()
	rig.clock.Set(time.Date(2026, 3, 1, 12, 1, 1, 0, time.UTC))
	lead.d.WakeScheduler()
	require.Eventually(t, func() bool { return rig.backend.waiting.Load() == int64(len(ids)) }, 30*time.Second, time.Millisecond,
		"every fire's intent committed, its session being created")
	// The process dies: its store goes first (no record can commit, its
	// lease is not revoked), then the sessions it asked for are created.
	lead.d.CrashStore()
	rig.backend.open()
	require.Eventually(t, func() bool { return rig.backend.Created() == before+int64(len(ids)) }, 30*time.Second, time.Millisecond)
	lead.stop(t)
	var live []*running
	for _, r := range rig.nodes {
		if r != lead {
			live = append(live, r)
		}
	}

	next := rig.leader(t, live)
	require.Eventually(t, func() bool {
		for _, id := range ids {
			if scheduledRuns(t, next, id)["12:01"] != 1 {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "every intent of the dead leader resolved")
	for _, id := range ids {
		assert.Equal(t, []string{"unknown_error"}, runErrorTypes(t, next, id), "%s: one run, recorded as interrupted", id)
	}
	assert.Equal(t, 1, strings.Count(next.logs.String(), "resolved intents left by nodes whose lease expired"))
	assert.Contains(t, next.logs.String(), fmt.Sprintf("runs=%d", len(ids)))

	// The next leader after it finds nothing left: no run twice, no session
	// created again.
	next.d.CrashStore()
	next.stop(t)
	var last *running
	for _, r := range live {
		if r != next {
			last = r
		}
	}
	rig.leader(t, []*running{last})
	rig.clock.Set(time.Date(2026, 3, 1, 12, 1, 30, 0, time.UTC))
	last.d.WakeScheduler()
	for _, id := range ids {
		assert.Equal(t, []string{"unknown_error"}, runErrorTypes(t, last, id), "%s: still one run", id)
	}
	assert.NotContains(t, last.logs.String(), "resolved intents left by nodes whose lease expired")
	assert.Equal(t, before+int64(len(ids)), rig.backend.Created(), "no session created twice")
}

// runErrorTypes lists the error type ("" for none) of each run of a
// deployment.
func runErrorTypes(t *testing.T, r *running, deploymentID string) []string {
	var out []string
	c := r.client()
	pager := c.Beta.DeploymentRuns.ListAutoPaging(t.Context(), anthropic.BetaDeploymentRunListParams{
		DeploymentID: anthropic.String(deploymentID), Limit: anthropic.Int(100)})
	for pager.Next() {
		var raw struct {
			Error *struct {
				Type string `json:"type"`
			} `json:"error"`
		}
		require.NoError(t, json.Unmarshal([]byte(pager.Current().RawJSON()), &raw))
		typ := ""
		if raw.Error != nil {
			typ = raw.Error.Type
		}
		out = append(out, typ)
	}
	require.NoError(t, pager.Err())
	return out
}
