package deployments

import (
	"sync"
	"time"

	"github.com/sandbox0/sandbox0d/schedule"
)

// UpcomingCount is how many upcoming fire times a deployment shows.
const UpcomingCount = 5

// planCache keeps, per deployment, the compiled cron and its next fire
// times, so rendering a list of 100 deployments does not recompute 500 fire
// times. An entry is valid while the deployment's generation and schedule
// are unchanged and its first time is still in the future.
type planCache struct {
	mu      sync.Mutex
	entries map[string]*planEntry
	// compiled shares one immutable compiled schedule among deployments
	// with the same (expression, timezone): loading 100,000 deployments
	// parses each distinct schedule once.
	compiled map[Schedule]*schedule.Cron
}

type planEntry struct {
	schedule   Schedule
	generation uint64
	cron       *schedule.Cron
	upcoming   []time.Time
}

func newPlanCache() *planCache {
	return &planCache{entries: map[string]*planEntry{}, compiled: map[Schedule]*schedule.Cron{}}
}

// cron returns the compiled schedule of d (nil when it has none).
func (c *planCache) cron(d *Deployment) *schedule.Cron {
	if d.Schedule == nil {
		return nil
	}
	c.mu.Lock()
	e := c.entries[d.ID]
	c.mu.Unlock()
	if e != nil && e.schedule == *d.Schedule {
		return e.cron
	}
	c.mu.Lock()
	cr := c.compiled[*d.Schedule]
	c.mu.Unlock()
	if cr == nil {
		var err error
		if cr, err = schedule.Compile(d.Schedule.Expression, d.Schedule.Timezone); err != nil {
			// Stored schedules were validated on the way in; a schedule that
			// no longer parses (tzdata change) shows no upcoming times rather
			// than breaking reads.
			return nil
		}
	}
	c.mu.Lock()
	c.compiled[*d.Schedule] = cr
	c.entries[d.ID] = &planEntry{schedule: *d.Schedule, generation: d.Generation, cron: cr}
	c.mu.Unlock()
	return cr
}

// upcoming returns the next UpcomingCount nominal fire times after
// max(PlanFrom, now); empty for archived or unscheduled deployments. Paused
// deployments show what the schedule would do if unpaused.
func (c *planCache) upcoming(d *Deployment, now time.Time) []time.Time {
	if d.Schedule == nil || d.Archived() {
		return nil
	}
	c.mu.Lock()
	e := c.entries[d.ID]
	if e != nil && e.schedule == *d.Schedule && e.generation == d.Generation &&
		len(e.upcoming) > 0 && e.upcoming[0].After(now) && !e.upcoming[0].Before(d.PlanFrom) {
		out := e.upcoming
		c.mu.Unlock()
		return out
	}
	c.mu.Unlock()
	cr := c.cron(d)
	if cr == nil {
		return nil
	}
	from := now
	if d.PlanFrom.After(from) {
		from = d.PlanFrom
	}
	times := cr.Upcoming(from, UpcomingCount)
	c.mu.Lock()
	if e := c.entries[d.ID]; e != nil && e.schedule == *d.Schedule {
		e.generation = d.Generation
		e.upcoming = times
	}
	c.mu.Unlock()
	return times
}

func (c *planCache) forget(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}

// Upcoming returns the next fire times shown as upcoming_runs_at.
func (s *Service) Upcoming(d *Deployment) []time.Time { return s.plans.upcoming(d, s.Now()) }
