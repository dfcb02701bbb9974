package daemon_test

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var heapSizeLine = regexp.MustCompile(`(?m)^sandbox0d_scheduler_heap_size (\S+)$`)

func heapSize(t *testing.T, r *running) int {
	t.Helper()
	m := heapSizeLine.FindStringSubmatch(scrape(t, socketClient(r.socket)))
	require.NotNil(t, m, "sandbox0d_scheduler_heap_size is exported")
	n, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	return int(n)
}

// In a cluster the scheduler metrics read the loop of the current
// leadership term: the leader reports the deployments its term planned, a
// follower (which runs no loop) 0, and after a failover the new leader its
// own term's. They used to read the scheduler built at start, which on etcd
// never runs: the leader reported what it had loaded before any deployment
// existed (0), and a node started later reported its start-time load while
// following.
func TestClusterSchedulerMetricsFollowTheTerm(t *testing.T) {
	rig := newClusterRig(t, 1)
	a := rig.nodes[0]
	rig.leader(t, rig.nodes)
	ca := a.client()
	for i := range 3 {
		_, err := ca.Beta.Deployments.New(t.Context(), minutelyParams(fmt.Sprint("m", i)))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return heapSize(t, a) == 3 }, 30*time.Second, 20*time.Millisecond,
		"the leader's term planned the three deployments")

	b := rig.startNode(t, "node-1") // loads three plans at start, then follows
	require.False(t, b.d.IsClusterLeader())
	require.Equal(t, 0, heapSize(t, b), "a follower runs no timer loop")

	a.stop(t) // resigns: node-1 leads with a term of its own
	require.Eventually(t, func() bool { return b.d.TermLoaded() }, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, 3, heapSize(t, b), "the new leader's term")
}
