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
	// parses each distinct schedule once. An entry lives while a deployment
	// uses it (users), so schedules edited away do not accumulate.
	compiled map[Schedule]*sharedCron
	// policy is the daemon's DST policy, which every schedule is compiled
	// under: it decides fire times and upcoming_runs_at alike.
	policy schedule.DSTPolicy
}

type sharedCron struct {
	cron  *schedule.Cron
	users int
}

type planEntry struct {
	schedule   Schedule
	generation uint64
	cron       *schedule.Cron
	upcoming   []time.Time
}

func newPlanCache(policy schedule.DSTPolicy) *planCache {
	return &planCache{entries: map[string]*planEntry{}, compiled: map[Schedule]*sharedCron{}, policy: policy}
}

// cron returns the compiled schedule of d (nil when it has none).
func (c *planCache) cron(d *Deployment) *schedule.Cron {
	if d.Schedule == nil {
		c.forget(d.ID) // the schedule was removed: drop its share
		return nil
	}
	c.mu.Lock()
	e := c.entries[d.ID]
	var shared *sharedCron
	if e == nil || e.schedule != *d.Schedule {
		shared = c.compiled[*d.Schedule]
	}
	c.mu.Unlock()
	if e != nil && e.schedule == *d.Schedule {
		return e.cron
	}
	var cr *schedule.Cron
	if shared != nil {
		cr = shared.cron
	} else {
		var err error
		if cr, err = schedule.CompileWith(d.Schedule.Expression, d.Schedule.Timezone, c.policy); err != nil {
			// Stored schedules were validated on the way in; a schedule that
			// no longer parses (tzdata change) shows no upcoming times rather
			// than breaking reads. (One that parses but has no fire time
			// under the policy, e.g. stored under once and loaded under
			// literal, compiles and shows none either.)
			return nil
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.entries[d.ID]; old != nil {
		if old.schedule == *d.Schedule {
			return old.cron // another caller got here first
		}
		c.release(old.schedule)
	}
	if shared = c.compiled[*d.Schedule]; shared == nil {
		shared = &sharedCron{cron: cr}
		c.compiled[*d.Schedule] = shared
	}
	shared.users++
	c.entries[d.ID] = &planEntry{schedule: *d.Schedule, generation: d.Generation, cron: shared.cron}
	return shared.cron
}

// release drops one user of a shared compiled schedule (c.mu held).
func (c *planCache) release(s Schedule) {
	if shared := c.compiled[s]; shared != nil {
		if shared.users--; shared.users <= 0 {
			delete(c.compiled, s)
		}
	}
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
	if e := c.entries[id]; e != nil {
		c.release(e.schedule)
		delete(c.entries, id)
	}
	c.mu.Unlock()
}

// Upcoming returns the next fire times shown as upcoming_runs_at.
func (s *Service) Upcoming(d *Deployment) []time.Time { return s.plans.upcoming(d, s.Now()) }
