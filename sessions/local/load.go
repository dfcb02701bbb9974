package local

import (
	"github.com/sandbox0/sandbox0d/store"
)

// Load is what a cluster places sessions by (issue 26): the free turn slots
// and the sessions with a turn running or waiting. Every active session
// holds a slot or will ask for one (a new session's runner takes its slot
// just after CreateSession returns), so free is local.max_concurrent_sessions
// less the active sessions; negative when sessions queue.
func (b *Backend) Load() (freeSlots, running int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cfg.MaxConcurrentSessions - len(b.active), len(b.active)
}

// IndexedSessionOfRun finds the session created for a run on any node, in
// the cluster's session index ("" when there is none): a run placed on
// another node is resolved through it after a crash.
func IndexedSessionOfRun(ns *store.Namespace, deploymentID, runID string) (string, error) {
	var found string
	err := ns.View(func(tx *store.NamespaceTx) error {
		records := tx.Bucket(bucketSessions)
		var err error
		tx.Bucket(bucketSessionsByDeployment).Scan(deploymentPrefix(deploymentID), nil, false, func(key, _ []byte) bool {
			id := key[len(deploymentID)+1+8:]
			v := records.Get(id)
			if v == nil {
				return true
			}
			var rec *sessionRecord
			if rec, err = decodeRecord(v); err != nil {
				return false
			}
			if rec.RunID == runID {
				found = rec.ID
				return false
			}
			return true
		})
		return err
	})
	return found, err
}
