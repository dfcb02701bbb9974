package deployments

import (
	"github.com/sandbox0/sandbox0d/store"
)

// SetWriter records this node's lease in every intent it writes from now
// on, so that only the intents of a node whose lease expired are resolved
// by another (RecoverIntentsOfDeadWriters).
func (s *Service) SetWriter(lease int64) { s.writer.Store(lease) }

// RecoverIntentsOfDeadWriters is RecoverIntents for a cluster: it resolves
// only the intents whose writer dead reports gone (its lease expired), so a
// live node's fire in progress is left to that node to record. Intents
// written without a writer (before the store joined a cluster) count as
// dead.
func (s *Service) RecoverIntentsOfDeadWriters(dead func(writer int64) bool) (int, error) {
	memo := map[int64]bool{}
	return s.recoverIntents(func(w int64) bool {
		if w == 0 {
			return true
		}
		d, ok := memo[w]
		if !ok {
			d = dead(w)
			memo[w] = d
		}
		return d
	})
}

// Cluster mode (store.type etcd): the daemon's elected leader sets its
// fence here, and every scheduled fire's claim and intent then commit only
// while that fence holds (store.Fence), so a node that lost leadership
// without noticing (paused, partitioned) cannot fire. The record step is
// not fenced by leadership: a fire whose intent committed records its run
// whoever leads by then.

// SetFence makes scheduled fires depend on f; the zero Fence (bbolt, or a
// node that is not leading) fences nothing.
func (s *Service) SetFence(f store.Fence) { s.fence.Store(&f) }

func (s *Service) currentFence() store.Fence {
	if f := s.fence.Load(); f != nil {
		return *f
	}
	return store.Fence{}
}

// StoredDeploymentChanged re-plans from a deployment document another node
// wrote (the leader's watch): the same path as a change made through this
// node's API, and as harmless when the plan is already current (a plan of
// the same generation is kept).
func (s *Service) StoredDeploymentChanged(doc []byte) error {
	d, err := decodeDeployment(doc)
	if err != nil {
		return err
	}
	s.changed(d)
	return nil
}
