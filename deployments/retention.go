package deployments

import (
	"context"
	"encoding/json"
	"time"

	"github.com/sandbox0/sandbox0d/store"
)

// Retention bounds how many runs are kept, so a busy box's data file stops
// growing: at most MaxPerDeployment runs per deployment and none older than
// MaxAge. Zero disables a limit.
type Retention struct {
	MaxPerDeployment int
	MaxAge           time.Duration
}

// pruneBatch is the most runs deleted in one write transaction, so pruning
// never holds the write lock long enough to delay fires or API writes.
const pruneBatch = 500

// PruneRuns deletes runs beyond the retention limits and returns how many.
// It stops early when ctx is done (shutdown); the next pass continues.
func (s *Service) PruneRuns(ctx context.Context, r Retention) (int, error) {
	total := 0
	if r.MaxAge > 0 {
		cutoff := s.Now().Add(-r.MaxAge)
		for {
			if err := ctx.Err(); err != nil {
				return total, err
			}
			n, err := s.deleteRuns(func(tx *store.Tx) []store.RunIndex { return tx.RunsOlderThan(cutoff, pruneBatch) })
			total += n
			if err != nil || n < pruneBatch {
				if err != nil {
					return total, err
				}
				break
			}
		}
	}
	if r.MaxPerDeployment > 0 {
		var ids []string
		if err := s.store.View(func(tx *store.Tx) error { ids = tx.DeploymentIDs(); return nil }); err != nil {
			return total, err
		}
		for _, id := range ids {
			if err := ctx.Err(); err != nil {
				return total, err
			}
			for {
				n, err := s.deleteRuns(func(tx *store.Tx) []store.RunIndex { return tx.RunsBeyond(id, r.MaxPerDeployment, pruneBatch) })
				total += n
				if err != nil {
					return total, err
				}
				if n < pruneBatch {
					break
				}
			}
		}
	}
	return total, nil
}

// deleteRuns deletes what pick chooses. It looks in a read transaction
// first, so a pass over 100,000 deployments with nothing to prune commits no
// write (and pays no fsync) per deployment.
func (s *Service) deleteRuns(pick func(tx *store.Tx) []store.RunIndex) (int, error) {
	found := false
	if err := s.store.View(func(tx *store.Tx) error { found = len(pick(tx)) > 0; return nil }); err != nil || !found {
		return 0, err
	}
	n := 0
	err := s.store.Update(func(tx *store.Tx) error {
		n = 0
		for _, ix := range pick(tx) {
			if err := forgetRunSession(tx, ix.ID); err != nil {
				return err
			}
			if err := tx.DeleteRun(ix); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// forgetRunSession drops the session index entry of a run being deleted.
func forgetRunSession(tx *store.Tx, runID string) error {
	doc := tx.GetRun(runID)
	if doc == nil {
		return nil
	}
	var run struct {
		SessionID string `json:"session_id"`
	}
	if json.Unmarshal(doc, &run) != nil || run.SessionID == "" || tx.RunOfSession(run.SessionID) != runID {
		return nil
	}
	return tx.DeleteRunSession(run.SessionID)
}
