package deployments

import (
	"context"
	"log/slog"
	"time"

	"github.com/sandbox0/sandbox0d/schedule"
	"github.com/sandbox0/sandbox0d/store"
)

// SchedulerConfig tunes the scheduler.
type SchedulerConfig struct {
	// Workers bounds concurrent fires (default 64).
	Workers int
	// Jitter is the maximum deterministic delay added to a fire (0: none).
	Jitter time.Duration
	// MisfireGrace: a fire missed while the daemon was down runs at startup
	// only if it is at most this old (0 disables).
	MisfireGrace time.Duration
	// MaxSleep caps one timer sleep so wall-clock steps are noticed (default 1m).
	MaxSleep time.Duration
	// Observe, when set, is told about every fire (metrics): lag is the time
	// from scheduled_at until the session was created (or the fire ended).
	Observe func(res FireResult, scheduledAt time.Time, lag time.Duration)
}

// Scheduler connects the service to the timer loop: it plans each active
// scheduled deployment's next fire and runs due fires through the pipeline.
type Scheduler struct {
	svc  *Service
	loop *schedule.Loop
	cfg  SchedulerConfig
	log  *slog.Logger
}

// AttachScheduler creates the scheduler; from now on every change to a
// deployment adjusts the timer loop at once. Call Load, then Run.
func (s *Service) AttachScheduler(cfg SchedulerConfig) *Scheduler {
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	sc := &Scheduler{svc: s, cfg: cfg, log: s.log}
	sc.loop = schedule.NewLoop(schedule.LoopConfig{
		Fire:     sc.fire,
		Workers:  cfg.Workers,
		MaxSleep: cfg.MaxSleep,
		Now:      s.now,
		Logger:   s.log,
	})
	s.sched = sc
	return sc
}

// Loop exposes the timer loop (heap size and next fire for metrics/health).
func (sc *Scheduler) Loop() *schedule.Loop { return sc.loop }

// Run runs the timer loop until ctx is done, then drains in-flight fires.
func (sc *Scheduler) Run(ctx context.Context) error { return sc.loop.Run(ctx) }

// LoadStats reports what Load found.
type LoadStats struct {
	Scheduled       int // deployments placed in the timer loop
	MisfiresRun     int // missed fires young enough to run now
	MisfiresSkipped int // missed fires older than the grace period (never backfilled)
}

// Load places every active scheduled deployment in the timer loop. A fire
// missed while the daemon was down is run now only when it is younger than
// MisfireGrace; older misses are counted, logged and skipped.
func (sc *Scheduler) Load() (LoadStats, error) {
	var stats LoadStats
	now := sc.svc.Now()
	err := sc.svc.store.View(func(tx *store.Tx) error {
		return tx.ForEachDeployment(func(_ string, doc []byte) error {
			d, err := decodeDeployment(doc)
			if err != nil {
				return err
			}
			if !d.Schedulable() {
				return nil
			}
			cr := sc.svc.plans.cron(d)
			if cr == nil {
				sc.log.Warn("stored schedule no longer parses; deployment will not fire",
					"deployment_id", d.ID, "expression", d.Schedule.Expression, "timezone", d.Schedule.Timezone)
				return nil
			}
			stats.Scheduled++
			missed, skipped := sc.missedFire(cr, d.PlanFrom, now)
			if skipped > 0 {
				stats.MisfiresSkipped += skipped
				sc.log.Info("skipped fires missed while the daemon was down (no backfill)",
					"deployment_id", d.ID, "skipped", skipped, "misfire_grace", sc.cfg.MisfireGrace.String())
			}
			if !missed.IsZero() {
				stats.MisfiresRun++
				sc.loop.Set(d.ID, missed, missed, d.Generation)
				return nil
			}
			sc.planFrom(d, cr, now)
			return nil
		})
	})
	return stats, err
}

// maxCountedMisses bounds the work of counting misses after a long downtime
// of a frequent schedule; the log then says "at least".
const maxCountedMisses = 10000

// missedFire returns the latest occurrence in (from, now] that is at most
// MisfireGrace old (zero if none) and how many other occurrences in
// (from, now] are skipped.
func (sc *Scheduler) missedFire(cr *schedule.Cron, from, now time.Time) (time.Time, int) {
	first := cr.Next(from)
	if first.IsZero() || first.After(now) {
		return time.Time{}, 0
	}
	var latest time.Time
	if sc.cfg.MisfireGrace > 0 {
		start := now.Add(-sc.cfg.MisfireGrace).Add(-time.Nanosecond)
		if start.Before(from) {
			start = from
		}
		for t := cr.Next(start); !t.IsZero() && !t.After(now); t = cr.Next(t) {
			latest = t
		}
	}
	skipped := 0
	for t := first; !t.IsZero() && !t.After(now) && skipped < maxCountedMisses; t = cr.Next(t) {
		if !t.Equal(latest) {
			skipped++
		}
	}
	return latest, skipped
}

// plan (re)places d in the timer loop, or removes it when it should not fire.
func (sc *Scheduler) plan(d *Deployment) {
	if !d.Schedulable() {
		sc.loop.Remove(d.ID)
		return
	}
	cr := sc.svc.plans.cron(d)
	if cr == nil {
		sc.loop.Remove(d.ID)
		return
	}
	sc.planFrom(d, cr, sc.svc.Now())
}

// planFrom sets the next fire: the first occurrence after max(PlanFrom, now).
// Computing from the nominal instant of the last fire (PlanFrom), never
// from a late start, keeps fires from drifting or repeating.
func (sc *Scheduler) planFrom(d *Deployment, cr *schedule.Cron, now time.Time) {
	from := now
	if d.PlanFrom.After(from) {
		from = d.PlanFrom
	}
	next := cr.Next(from)
	if next.IsZero() {
		sc.loop.Remove(d.ID)
		return
	}
	fireAt := next
	if sc.cfg.Jitter > 0 {
		fireAt = next.Add(schedule.Jitter(d.ID, next, cr.Next(next), sc.cfg.Jitter))
	}
	sc.loop.Set(d.ID, next, fireAt, d.Generation)
}

// fire runs on a loop worker for one due fire.
func (sc *Scheduler) fire(ctx context.Context, due schedule.Due) {
	lag := sc.svc.now().Sub(due.ScheduledAt)
	res, err := sc.svc.Fire(ctx, due.ID, due.ScheduledAt, due.Generation, sc.plan)
	if err != nil {
		sc.log.Error("scheduled fire failed to record", "deployment_id", due.ID,
			"scheduled_at", due.ScheduledAt.UTC().Format(time.RFC3339), "error", err)
		// Keep the schedule alive: plan from the stored state.
		if d, gerr := sc.svc.Get(ctx, due.ID); gerr == nil {
			sc.plan(d)
		}
		return
	}
	switch res.Outcome {
	case FireSkipped:
		// The plan was stale (an update, pause or archive raced it): plan
		// again from what is stored now, so a stale timer entry can never
		// leave a deployment without its next fire.
		if res.Deployment != nil {
			sc.plan(res.Deployment)
		}
	case FirePaused:
		sc.loop.Remove(due.ID)
	}
	attrs := []any{"deployment_id", due.ID, "scheduled_at", due.ScheduledAt.UTC().Format(time.RFC3339),
		"outcome", string(res.Outcome), "lag", lag.String()}
	if res.Run != nil {
		attrs = append(attrs, "run_id", res.Run.ID)
		if res.Run.SessionID != "" {
			attrs = append(attrs, "session_id", res.Run.SessionID)
		}
		if res.Run.Error != nil {
			attrs = append(attrs, "error_type", string(res.Run.Error.Type))
		}
	}
	if res.Reason != "" {
		attrs = append(attrs, "reason", res.Reason)
	}
	sc.log.Info("scheduled fire", attrs...)
	if sc.cfg.Observe != nil {
		sc.cfg.Observe(res, due.ScheduledAt, sc.svc.now().Sub(due.ScheduledAt))
	}
}

// replan adjusts the timer loop and the upcoming-times cache after a change.
func (s *Service) replan(d *Deployment) {
	if d.Archived() {
		s.plans.forget(d.ID)
	}
	if s.sched != nil {
		s.sched.plan(d)
	}
}
