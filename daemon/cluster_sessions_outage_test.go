package daemon_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/store/storetest"
)

// indexedStatus is session id's status in the cluster's session index, as
// sessions.list on n answers it ("" when not listed).
func indexedStatus(t *testing.T, n *localClusterNode, id string) string {
	status, body := do(t, n.http, "GET", n.url("/v1/sessions?limit=100"), "", nil)
	require.Equal(t, 200, status, "%v", body)
	for _, s := range body["data"].([]any) {
		if s := s.(map[string]any); s["id"] == id {
			return s["status"].(string)
		}
	}
	return ""
}

// A session's status changes while etcd has no quorum (issue 26): the
// change commits on its node with an index-pending entry in the same
// transaction, and once etcd answers the node drains it: the index catches
// up with no further change of the session and within the node's lease
// (the repair is the drain, not the full copy made on a new lease).
func TestClusterIndexCatchesUpAfterAnEtcdOutage(t *testing.T) {
	etcd := storetest.Start(t, 3)
	nodes := startLocalClusterOn(t, etcd, 2, func(cfg *daemon.Config) { cfg.Cluster.LeaseTTL = 30 * time.Second })
	status, created := do(t, nodes[0].http, "POST", nodes[0].url("/v1/sessions"), "", map[string]any{
		"agent": "agent_wait", "environment_id": "env_1"})
	require.Equal(t, 200, status, "%v", created)
	id := created["id"].(string)
	own, other := nodes[0], nodes[1]
	if created["node"] == other.name {
		own, other = other, own
	}
	status, body := do(t, own.http, "POST", own.url("/v1/sessions/"+id+"/events"), "", map[string]any{
		"events": []any{map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": "work"}}}}})
	require.Equal(t, 200, status, "%v", body)
	require.Eventually(t, func() bool { return indexedStatus(t, other, id) == "running" }, 30*time.Second, 20*time.Millisecond)
	lease := own.d.ClusterLease()
	require.NotZero(t, lease)

	// Two of three members stopped: no quorum. The owner still serves its
	// own session from its file; the interrupt ends the turn there.
	etcd.StopMember(1)
	etcd.StopMember(2)
	status, body = do(t, own.http, "POST", own.url("/v1/sessions/"+id+"/events"), "", map[string]any{
		"events": []any{map[string]any{"type": "user.interrupt"}}})
	require.Equal(t, 200, status, "%v", body)
	require.Eventually(t, func() bool { return clusterSessionStatus(t, own, id) == "idle" }, 30*time.Second, 20*time.Millisecond)
	pending, err := own.d.IndexPending()
	require.NoError(t, err)
	assert.Positive(t, pending, "the change waits in the node's file for its index copy")

	require.NoError(t, etcd.RestartMember(1))
	require.NoError(t, etcd.RestartMember(2))
	require.Eventually(t, func() bool {
		n, err := own.d.IndexPending()
		return err == nil && n == 0
	}, 60*time.Second, 50*time.Millisecond, "the pending copies are drained")
	assert.Equal(t, "idle", indexedStatus(t, other, id), "the index caught up without another change")
	assert.Equal(t, lease, own.d.ClusterLease(), "within the same lease: drained, not re-copied on a new lease")
}
