package local

import (
	"sync"
	"time"
)

// Stages of stopping a harness at shutdown, each bounded by the deadline.
type shutdownStage int

const (
	killStage  shutdownStage = iota // SIGTERM → SIGKILL
	drainStage                      // SIGKILL → output pipes closed
)

// shutdownBudget is the daemon's shutdown deadline as seen by the harness
// stoppers. Once set, every grace period ends early enough for Close to
// return by the deadline: the grace before SIGKILL ends a quarter of the
// grace before it, the output drain at it.
type shutdownBudget struct {
	mu       sync.Mutex
	deadline time.Time
	grace    time.Duration
}

func (s *shutdownBudget) set(deadline time.Time, grace time.Duration) {
	s.mu.Lock()
	s.deadline, s.grace = deadline, max(grace, 0)
	s.mu.Unlock()
}

// bound shortens d so the stage ends by its share of the deadline; without
// a deadline d is returned as is.
func (s *shutdownBudget) bound(d time.Duration, stage shutdownStage) time.Duration {
	s.mu.Lock()
	deadline, grace := s.deadline, s.grace
	s.mu.Unlock()
	if deadline.IsZero() {
		return d
	}
	end := deadline
	if stage == killStage {
		end = deadline.Add(-grace / 4)
	}
	return max(0, min(d, time.Until(end)))
}
