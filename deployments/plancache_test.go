package deployments

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sandbox0/sandbox0d/schedule"
	"github.com/stretchr/testify/require"
)

// Regression: planCache.compiled was never evicted, so every schedule a
// deployment was ever edited to stayed compiled for the process's life.
func TestPlanCacheEvictsUnusedCompiledSchedules(t *testing.T) {
	c := newPlanCache(schedule.DSTOnce)
	a := Schedule{Expression: "*/5 * * * *", Timezone: "UTC"}
	b := Schedule{Expression: "0 9 * * 1-5", Timezone: "Europe/Berlin"}
	d1 := &Deployment{ID: "depl_1", Schedule: &a, Generation: 1}
	d2 := &Deployment{ID: "depl_2", Schedule: &a, Generation: 1}
	require.NotNil(t, c.cron(d1))
	require.Same(t, c.cron(d1), c.cron(d2), "one compiled schedule is shared")
	assert.Len(t, c.compiled, 1)

	d1.Schedule, d1.Generation = &b, 2
	require.NotNil(t, c.cron(d1))
	assert.Len(t, c.compiled, 2, "a is still used by d2")
	c.forget(d2.ID)
	assert.Len(t, c.compiled, 1, "nobody uses a any more")
	d1.Schedule = nil
	assert.Nil(t, c.cron(d1))
	assert.Empty(t, c.compiled, "a removed schedule releases its share")
	assert.Empty(t, c.entries)
}
