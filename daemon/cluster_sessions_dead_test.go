package daemon_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/webhooks"
)

// A node is killed with a session mid-turn and an idle one (issue 26, item
// 4). The leader reports both lost, once each. The idle one is deleted
// through another node while its node is dead: it leaves the index at once
// (404 and absent from every list), and when the node restarts it deletes
// the session's workspace and records and does not copy it back. The
// session that was mid-turn ends as on a restart, without a second report:
// across the death and the return it yields exactly one terminal webhook.
func TestClusterDeadNodeDeleteAndOneReportPerSession(t *testing.T) {
	rc, hookURL := newHookReceiver(t, 27)
	nodes := startLocalCluster(t, 3, func(cfg *daemon.Config) {
		cfg.Webhooks = webhooks.Config{Endpoints: []webhooks.EndpointConfig{{URL: hookURL, SigningKey: webhooks.Secret(rc.key),
			Events: []string{"session.status_terminated", "session.status_idled", "session.deleted"}}}}
	})
	deployment := func(name, agent string) string {
		status, dep := do(t, nodes[0].http, "POST", nodes[0].url("/v1/deployments"), "", map[string]any{
			"name": name, "agent": agent, "environment_id": "env_1",
			"initial_events": []any{map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": "hi"}}}},
		})
		require.Equal(t, 200, status, "%v", dep)
		return dep["id"].(string)
	}
	quick, long := deployment("quick", "agent_a"), deployment("long", "agent_wait")
	run := func(via *localClusterNode, dep string) string {
		status, run := do(t, via.http, "POST", via.url("/v1/deployments/"+dep+"/run"), "", nil)
		require.Equal(t, 200, status, "%v", run)
		return run["session_id"].(string)
	}
	victim := nodes[2]
	for _, n := range nodes {
		n.d.PublishLoad()
	}
	cordon(t, nodes[0], "cordon", "node-0")
	cordon(t, nodes[0], "cordon", "node-1")
	doomed := run(nodes[0], quick) // idle when its node dies; deleted while it is dead
	require.Eventually(t, func() bool { return tryStatus(t, nodes[0], doomed) == "idle" }, 30*time.Second, 20*time.Millisecond)
	midTurn := run(nodes[1], long) // running when its node dies
	require.Eventually(t, func() bool { return tryStatus(t, nodes[1], midTurn) == "running" }, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, "node-2", sessionNode(t, nodes[0], doomed))
	require.Equal(t, "node-2", sessionNode(t, nodes[0], midTurn))
	cordon(t, nodes[0], "uncordon", "node-0")
	cordon(t, nodes[0], "uncordon", "node-1")
	workspace := filepath.Join(victim.cfg.DataDir, "workspaces", doomed)
	require.DirExists(t, workspace)
	require.Equal(t, []string{"session.status_idled " + doomed}, rc.await(t, 1))

	// Killed: its etcd client and its session file cut under it, so
	// neither its lease nor the end of the running turn is written.
	victim.d.CrashStore()
	victim.d.CrashSessionFile()
	victim.stop(t)
	live := nodes[:2]
	for _, id := range []string{doomed, midTurn} {
		require.Eventually(t, func() bool { return tryStatus(t, live[0], id) == "terminated" }, 30*time.Second, 50*time.Millisecond)
	}

	// Deleted through node-1 while node-2 is dead.
	status, body := do(t, live[1].http, "DELETE", live[1].url("/v1/sessions/"+doomed), "", nil)
	require.Equal(t, 200, status, "%v", body)
	assert.Equal(t, map[string]any{"id": doomed, "type": "session_deleted"}, body)
	for _, n := range live {
		status, _ := do(t, n.http, "GET", n.url("/v1/sessions/"+doomed), "", nil)
		assert.Equal(t, 404, status, "a deleted session read on %s (its owner cached there)", n.name)
		status, _ = do(t, n.http, "DELETE", n.url("/v1/sessions/"+doomed), "", nil)
		assert.Equal(t, 404, status, "deleted twice on %s", n.name)
		assert.NotContains(t, listAll(t, n, 2), doomed)
		assert.Contains(t, listAll(t, n, 2), midTurn)
	}
	assert.DirExists(t, workspace, "the workspace waits for its node")

	// The node returns with its data.
	victim.start(t)
	awaitNodes(t, nodes[0], 3)
	assert.NoDirExists(t, workspace, "removed by the returned node")
	for _, n := range live {
		require.Eventually(t, func() bool { return tryStatus(t, n, midTurn) == "idle" }, 30*time.Second, 50*time.Millisecond,
			"the mid-turn session ends as on a restart, its node's record winning")
	}
	types := eventTypes(t, nodes[0], midTurn)
	assert.Equal(t, "session.error", types[len(types)-2], "the restart's error, in the owner's events: %v", types)
	for _, n := range nodes {
		status, _ := do(t, n.http, "GET", n.url("/v1/sessions/"+doomed), "", nil)
		assert.Equal(t, 404, status, "read on %s after the return", n.name)
		assert.NotContains(t, listAll(t, n, 2), doomed, "not copied back into the index from %s", n.name)
	}

	// A barrier: a session created on the returned node after its start;
	// its idle report comes after the restart's own deliveries.
	cordon(t, nodes[0], "cordon", "node-0")
	cordon(t, nodes[0], "cordon", "node-1")
	victim.d.PublishLoad()
	barrier := run(nodes[0], quick)
	require.Equal(t, "node-2", sessionNode(t, nodes[0], barrier))
	want := []string{
		"session.status_idled " + doomed,                                              // before the death
		"session.status_terminated " + doomed, "session.status_terminated " + midTurn, // the leader's lost marks
		"session.deleted " + doomed, // the delete on the dead node, once
		"session.status_idled " + barrier,
	}
	got := rc.await(t, len(want))
	assert.ElementsMatch(t, want, got, "one report each: no idle for the mid-turn session, no second delete")
}
