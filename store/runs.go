package store

import (
	"bytes"
	"errors"
	"fmt"
	"time"
)

// ErrDuplicateFire is returned when a scheduled fire (deployment,
// scheduled_at) already has a run or an intent.
var ErrDuplicateFire = errors.New("a run already exists for this scheduled fire")

// RunIndex is what the indexes need to know about a run document.
type RunIndex struct {
	ID           string
	DeploymentID string
	CreatedAt    time.Time
	Scheduled    bool      // trigger_type schedule (else manual)
	ScheduledAt  time.Time // identity of a scheduled fire
	HasError     bool
}

const (
	runFlagScheduled = 1 << 0
	runFlagHasError  = 1 << 1
)

// A run index entry is flags | scheduled_at (8 bytes, scheduled runs only) |
// deployment id, so retention can release a fire claim from the index alone.
func encodeRunEntry(ix RunIndex) []byte {
	var flags byte
	if ix.HasError {
		flags |= runFlagHasError
	}
	if !ix.Scheduled {
		return append([]byte{flags}, ix.DeploymentID...)
	}
	flags |= runFlagScheduled
	v := append([]byte{flags}, timeKey(ix.ScheduledAt)...)
	return append(v, ix.DeploymentID...)
}

func decodeRunEntry(v []byte) (flags byte, scheduledAt time.Time, deploymentID string) {
	if len(v) == 0 {
		return 0, time.Time{}, ""
	}
	flags, v = v[0], v[1:]
	if flags&runFlagScheduled != 0 && len(v) >= 8 {
		scheduledAt, v = timeFromKey(v[:8]), v[8:]
	}
	return flags, scheduledAt, string(v)
}

// ClaimScheduledFire reserves (deploymentID, scheduledAt) for runID. It fails
// with ErrDuplicateFire when another run holds it; claiming again for the
// same run id is a no-op so idempotent batch functions can retry.
func (tx *Tx) ClaimScheduledFire(deploymentID string, scheduledAt time.Time, runID string) error {
	// A fire's claim is new but for a rerun or a duplicate: on etcd the
	// commit proves it absent instead of a read before it.
	return tx.claimScheduledFire(deploymentID, scheduledAt, runID, true)
}

// claimScheduledFire is ClaimScheduledFire; likelyAbsent says which read
// fits: recording a scheduled run finds its own claim, which a real read
// sees at once where an assumed absence would cost a refused commit.
func (tx *Tx) claimScheduledFire(deploymentID string, scheduledAt time.Time, runID string, likelyAbsent bool) error {
	b := tx.bucket(bucketScheduledRuns)
	k := prefixed(deploymentID, timeKey(scheduledAt))
	var v []byte
	if likelyAbsent {
		v = b.GetLikelyAbsent(k)
	} else {
		v = b.Get(k)
	}
	if v != nil {
		if string(v) == runID {
			return nil
		}
		return fmt.Errorf("deployment %s at %s: %w", deploymentID, scheduledAt.UTC().Format(time.RFC3339), ErrDuplicateFire)
	}
	return b.Put(k, []byte(runID))
}

// ScheduledFireRunID returns the run id holding (deploymentID, scheduledAt), or "".
func (tx *Tx) ScheduledFireRunID(deploymentID string, scheduledAt time.Time) string {
	return string(tx.bucket(bucketScheduledRuns).GetLikelyAbsent(prefixed(deploymentID, timeKey(scheduledAt))))
}

// GetRun returns a copy of the run document, or nil.
func (tx *Tx) GetRun(id string) []byte {
	v := tx.bucket(bucketRuns).Get([]byte(id))
	if v == nil {
		return nil
	}
	return append([]byte(nil), v...)
}

// PutRun stores a run document and its index entries. A scheduled run must
// hold its fire claim (ClaimScheduledFire) — PutRun claims it if free.
func (tx *Tx) PutRun(ix RunIndex, doc []byte) error {
	if ix.ID == "" || ix.DeploymentID == "" {
		return errors.New("put run: empty id")
	}
	if ix.Scheduled {
		if err := tx.claimScheduledFire(ix.DeploymentID, ix.ScheduledAt, ix.ID, false); err != nil {
			return err
		}
	}
	ck := createdKey(ix.CreatedAt, ix.ID)
	entry := encodeRunEntry(ix)
	if err := tx.bucket(bucketRuns).Put([]byte(ix.ID), doc); err != nil {
		return err
	}
	if err := tx.bucket(bucketRunsByCreated).Put(ck, entry); err != nil {
		return err
	}
	return tx.bucket(bucketRunsByDeployment).Put(prefixed(ix.DeploymentID, ck), entry)
}

// PutRunSession records that runID created sessionID, so a session the
// daemon created can be traced back to its run (and deployment). Runs
// recorded before this index existed are not in it.
func (tx *Tx) PutRunSession(sessionID, runID string) error {
	if sessionID == "" || runID == "" {
		return errors.New("put run session: empty id")
	}
	return tx.bucket(bucketRunsBySession).Put([]byte(sessionID), []byte(runID))
}

// RunOfSession returns the id of the run that created sessionID, or "".
func (tx *Tx) RunOfSession(sessionID string) string {
	return string(tx.bucket(bucketRunsBySession).Get([]byte(sessionID)))
}

// DeleteRunSession forgets a session's run (when the run is deleted).
func (tx *Tx) DeleteRunSession(sessionID string) error {
	return tx.bucket(bucketRunsBySession).Delete([]byte(sessionID))
}

// DeleteRun removes a run and its index entries (retention). The scheduled
// fire claim is kept only while the run exists; a pruned old fire can never
// be due again, because next fires only move forward.
func (tx *Tx) DeleteRun(ix RunIndex) error {
	ck := createdKey(ix.CreatedAt, ix.ID)
	if err := tx.bucket(bucketRuns).Delete([]byte(ix.ID)); err != nil {
		return err
	}
	if err := tx.bucket(bucketRunsByCreated).Delete(ck); err != nil {
		return err
	}
	if err := tx.bucket(bucketRunsByDeployment).Delete(prefixed(ix.DeploymentID, ck)); err != nil {
		return err
	}
	if ix.Scheduled {
		k := prefixed(ix.DeploymentID, timeKey(ix.ScheduledAt))
		b := tx.bucket(bucketScheduledRuns)
		if string(b.Get(k)) == ix.ID {
			return b.Delete(k)
		}
	}
	return nil
}

// RunQuery filters a newest-first listing of runs.
type RunQuery struct {
	DeploymentID string
	Trigger      string // "", "manual" or "schedule"
	HasError     *bool
	CreatedGT    time.Time // zero: unbounded
	CreatedGTE   time.Time
	CreatedLT    time.Time
	CreatedLTE   time.Time
	After        *Position
	Limit        int
}

// ListRuns returns up to Limit run documents matching q, newest first, and
// the position to continue from when more may follow.
func (tx *Tx) ListRuns(q RunQuery) ([][]byte, *Position, error) {
	upper := upperBound(q.After, q.CreatedLTE, false)
	if !q.CreatedLT.IsZero() {
		upper = minKey(upper, upperBound(nil, q.CreatedLT, true))
	}
	w := tx.indexWalk(q.DeploymentID, bucketRunsByDeployment, bucketRunsByCreated, upper)
	lower := []lowerBound{{At: q.CreatedGTE}, {At: q.CreatedGT, Strict: true}}
	return collectPage(w, tx.bucket(bucketRuns), "run", q.Limit, lower, func(_, entry []byte) bool {
		flags, _, _ := decodeRunEntry(entry)
		scheduled := flags&runFlagScheduled != 0
		if q.Trigger == "manual" && scheduled || q.Trigger == "schedule" && !scheduled {
			return false
		}
		return q.HasError == nil || (flags&runFlagHasError != 0) == *q.HasError
	})
}

// PutIntent records that a run is about to call the session backend.
func (tx *Tx) PutIntent(runID string, doc []byte) error {
	return tx.bucket(bucketIntents).Put([]byte(runID), doc)
}

// HasIntent reports whether runID's intent is still unresolved.
func (tx *Tx) HasIntent(runID string) bool {
	return tx.bucket(bucketIntents).Get([]byte(runID)) != nil
}

// DeleteIntent removes a resolved intent.
func (tx *Tx) DeleteIntent(runID string) error {
	return tx.bucket(bucketIntents).Delete([]byte(runID))
}

// ForEachIntent calls fn for every unresolved intent.
func (tx *Tx) ForEachIntent(fn func(runID string, doc []byte) error) error {
	return tx.bucket(bucketIntents).ForEach(func(k, v []byte) error { return fn(string(k), v) })
}

func runIndexFromEntry(id string, created time.Time, entry []byte) RunIndex {
	flags, scheduledAt, deploymentID := decodeRunEntry(entry)
	return RunIndex{ID: id, DeploymentID: deploymentID, CreatedAt: created, Scheduled: flags&runFlagScheduled != 0,
		ScheduledAt: scheduledAt, HasError: flags&runFlagHasError != 0}
}

// ForEachRun calls fn for every run document, in id order (inspection tools).
func (tx *Tx) ForEachRun(fn func(id string, doc []byte) error) error {
	return tx.bucket(bucketRuns).ForEach(func(k, v []byte) error { return fn(string(k), v) })
}

// FireClaim is one entry of the scheduled-fire claims index.
type FireClaim struct {
	DeploymentID string
	ScheduledAt  time.Time
	RunID        string
	// Key is the raw key when it is malformed (then the fields above are
	// empty); inspection tools report it.
	Key []byte
}

// ForEachFireClaim calls fn for every scheduled-fire claim (inspection tools).
func (tx *Tx) ForEachFireClaim(fn func(FireClaim) error) error {
	return tx.bucket(bucketScheduledRuns).ForEach(func(k, v []byte) error {
		i := bytes.IndexByte(k, 0)
		if i < 0 || len(k)-i-1 != 8 {
			return fn(FireClaim{Key: append([]byte(nil), k...)})
		}
		return fn(FireClaim{DeploymentID: string(k[:i]), ScheduledAt: timeFromKey(k[i+1:]), RunID: string(v)})
	})
}
