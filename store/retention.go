package store

import "time"

// Run retention walks index keys only (no documents are decoded) and deletes
// in small transactions so a prune never holds the write lock for long.

// RunsOlderThan returns up to limit runs created before cutoff, oldest first.
func (tx *Tx) RunsOlderThan(cutoff time.Time, limit int) []RunIndex {
	var out []RunIndex
	c := tx.bucket(bucketRunsByCreated).Cursor()
	for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
		created, id := splitCreatedKey(k)
		if !created.Before(cutoff) {
			break
		}
		out = append(out, runIndexFromEntry(id, created, v))
	}
	return out
}

// RunsBeyond returns up to limit runs of a deployment past its newest keep.
func (tx *Tx) RunsBeyond(deploymentID string, keep, limit int) []RunIndex {
	var out []RunIndex
	seen := 0
	w := newReverseWalk(tx.bucket(bucketRunsByDeployment), prefixOf(deploymentID), nil)
	for k := w.first(); k != nil && len(out) < limit; k = w.next() {
		seen++
		if seen <= keep {
			continue
		}
		created, id := splitCreatedKey(k)
		out = append(out, runIndexFromEntry(id, created, w.value()))
	}
	return out
}

// DeploymentIDs returns every deployment id (keys only).
func (tx *Tx) DeploymentIDs() []string {
	var ids []string
	_ = tx.bucket(bucketDeployments).ForEach(func(k, _ []byte) error {
		ids = append(ids, string(k))
		return nil
	})
	return ids
}

// CountDeploymentsByStatus counts deployments by wire status from index
// flags: "active", "paused" and "archived".
func (tx *Tx) CountDeploymentsByStatus() map[string]int {
	counts := map[string]int{"active": 0, "paused": 0, "archived": 0}
	_ = tx.bucket(bucketDeplByCreated).ForEach(func(_, v []byte) error {
		flags, _ := decodeDeplEntry(v)
		switch {
		case flags&deplFlagArchived != 0:
			counts["archived"]++
		case flags&deplFlagPaused != 0:
			counts["paused"]++
		default:
			counts["active"]++
		}
		return nil
	})
	return counts
}
