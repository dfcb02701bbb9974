package daemon

import (
	"context"
	"sync"
	"time"
)

// Webhooks in a cluster (issue 25, point 6): the outbox is shared in etcd,
// so a dispatcher on every node would make each delivery once per node.
// Only the leader delivers: each leadership term runs the dispatcher once
// and stops it before the term returns, so terms (and deliveries) never
// overlap on one node, and the election keeps them from overlapping across
// nodes while leases hold. An attempt cut short by the end of a term stays
// pending in etcd (its outcome was never written) and is made again, with
// the same webhook-id, by the next leader: at least once, never lost.

// leadWebhooks starts delivering for the term that ctx spans and returns
// the function that stops delivery and waits until every attempt in
// flight has ended (answers already received are written first).
func (d *Daemon) leadWebhooks(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		// Writers on other nodes wake only their own dispatcher; the
		// leader's hears of their appends through a watch.
		for ctx.Err() == nil {
			err := d.store.WatchWebhookOutbox(ctx, d.hooks.Notify)
			if err == nil {
				break
			}
			d.log.Warn("cluster: watching the webhook outbox failed; retrying", "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	})
	wg.Go(func() { _ = d.hooks.Run(ctx) })
	return func() {
		cancel()
		wg.Wait()
	}
}
