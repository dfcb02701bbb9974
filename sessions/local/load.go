package local

import (
	"context"

	"github.com/sandbox0/sandbox0d/store"
)

type reservationKey struct{}

// WithReservation marks the session created under ctx as the one a cluster
// placement reserved token for (store/cluster_reserve.go). Load reports the
// tokens of the sessions it counts, so the node's published load drops
// their reservations in the same write that counts them: a session is never
// counted twice, as a running one and as a reservation, which could make
// every node look full and the next placement overfill one.
func WithReservation(ctx context.Context, token string) context.Context {
	if token == "" {
		return ctx
	}
	return context.WithValue(ctx, reservationKey{}, token)
}

func reservationOf(ctx context.Context) string {
	token, _ := ctx.Value(reservationKey{}).(string)
	return token
}

// Load is what a cluster places sessions by (issue 26): the free turn slots
// and the sessions with a turn running or waiting. Every active session
// holds a slot or will ask for one (a new session's runner takes its slot
// just after CreateSession returns), so free is local.max_concurrent_sessions
// less the active sessions; negative when sessions queue.
// counted holds the placement reservations of the sessions it counts.
func (b *Backend) Load() (freeSlots, running int, counted []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, as := range b.active {
		if as.run.reservation != "" {
			counted = append(counted, as.run.reservation)
		}
	}
	return b.cfg.MaxConcurrentSessions - len(b.active), len(b.active), counted
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
