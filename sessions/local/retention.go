package local

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/sandbox0/sandbox0d/store"
)

// retentionChunkEvents is how many events one pruning transaction deletes,
// so pruning a chatty session never holds the write lock for long.
const retentionChunkEvents = 1000

// PruneSessions deletes, with their events and workspaces, the sessions
// that have been terminated, archived, or idle without activity for longer
// than local.session_retention before now. A session with a turn running or
// waiting is never pruned. Each session goes in small transactions (its
// events in chunks, then its record). It returns how many it deleted; a
// janitor inside the backend also runs it periodically.
func (b *Backend) PruneSessions(now time.Time) (int, error) {
	cutoff := now.Add(-b.cfg.SessionRetention)
	expired, err := b.store.sessionsWhere(func(rec *sessionRecord) bool {
		switch {
		case rec.Status == statusTerminated:
			return rec.EndedAt != nil && !rec.EndedAt.After(cutoff)
		case rec.ArchivedAt != nil:
			return !rec.ArchivedAt.After(cutoff)
		case rec.Status == statusIdle:
			return !rec.UpdatedAt.After(cutoff)
		}
		return false
	})
	if err != nil {
		return 0, fmt.Errorf("pruning sessions: %w", err)
	}
	deleted := 0
	var errs []error
	for _, rec := range expired {
		if !b.claimForPruning(rec.ID) {
			continue // a message started a turn meanwhile
		}
		err := b.pruneSession(rec)
		b.mu.Lock()
		delete(b.pruning, rec.ID)
		b.mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("session %s: %w", rec.ID, err))
			continue
		}
		b.notify(rec.ID)
		deleted++
	}
	return deleted, errors.Join(errs...)
}

// claimForPruning marks a session as being pruned unless it is active;
// sends to it answer 404 from then on.
func (b *Backend) claimForPruning(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, busy := b.active[id]; busy {
		return false
	}
	b.pruning[id] = true
	return true
}

func (b *Backend) pruneSession(rec *sessionRecord) error {
	if err := os.RemoveAll(rec.Workspace); err != nil {
		return fmt.Errorf("removing the workspace: %w", err)
	}
	for {
		n, err := b.store.deleteEventsChunk(rec.ID, retentionChunkEvents)
		if err != nil {
			return err
		}
		if n < retentionChunkEvents {
			break
		}
	}
	if err := b.store.deleteSession(rec.ID, b.cfg.Now()); err != nil && !errors.Is(err, errSessionNotFound) {
		return err
	}
	return nil
}

// deleteEventsChunk deletes up to max of a session's oldest events and
// returns how many it deleted.
func (s sessionStore) deleteEventsChunk(id string, max int) (int, error) {
	n := 0
	err := s.ns.Update(func(tx *store.NamespaceTx) error {
		events := tx.Bucket(bucketEvents)
		var keys [][]byte
		prefix := eventPrefix(id)
		events.Scan(prefix, nil, false, func(k, _ []byte) bool { // k lacks the prefix
			keys = append(keys, append(append([]byte(nil), prefix...), k...))
			return len(keys) < max
		})
		for _, k := range keys {
			if err := events.Delete(k); err != nil {
				return err
			}
		}
		n = len(keys)
		return nil
	})
	return n, err
}

// sessionsOfDeployment reads the records of one deployment's sessions.
func (s sessionStore) sessionsOfDeployment(deploymentID string) ([]*sessionRecord, error) {
	var out []*sessionRecord
	err := s.ns.View(func(tx *store.NamespaceTx) error {
		records := tx.Bucket(bucketSessions)
		var err error
		tx.Bucket(bucketSessionsByDeployment).Scan(deploymentPrefix(deploymentID), nil, false, func(k, _ []byte) bool {
			id := k[8:] // created(8) id, the prefix stripped
			v := records.Get(id)
			if v == nil {
				return true
			}
			var rec *sessionRecord
			if rec, err = decodeRecord(v); err != nil {
				return false
			}
			out = append(out, rec)
			return true
		})
		return err
	})
	return out, err
}
