package daemon_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A `* * * * *` deployment created on a follower just before a minute
// reaches the leader through the watch just after it. The follower's clock
// reads 50 ms before 12:01, the leader's 50 ms after (the watch's delay,
// or two clocks a little apart): the deployment was created before 12:01,
// so 12:01 is due, as on one node, where the creation plans it. Before the
// fix the leader planned it from its own now and the 12:01 fire was lost
// (found by `go run ./bench cluster -kills 20`: deployments created 0–50 ms
// before a boundary on a random node).
func TestClusterFiresADeploymentCreatedOnAFollowerJustBeforeTheMinute(t *testing.T) {
	rig := newClusterRig(t, 1)
	lead := rig.leader(t, rig.nodes)
	followerClock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 59, 950e6, time.UTC)}
	follower := rig.startNodeWith(t, "node-1", followerClock.Now)
	rig.clock.Set(time.Date(2026, 3, 1, 12, 1, 0, 50e6, time.UTC))

	fc := follower.client()
	dep, err := fc.Beta.Deployments.New(t.Context(), minutelyParams("edge"))
	require.NoError(t, err)
	assert.Equal(t, followerClock.Now(), dep.CreatedAt.UTC(), "created before 12:01 on the follower's clock")
	require.Eventually(t, func() bool {
		lead.d.WakeScheduler()
		return scheduledRuns(t, follower, dep.ID)["12:01"] == 1
	}, 20*time.Second, 50*time.Millisecond, "the leader fired 12:01 for a deployment created before it")
	assert.Equal(t, map[string]int{"12:01": 1}, scheduledRuns(t, lead, dep.ID))
}
