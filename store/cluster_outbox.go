package store

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// WatchWebhookOutbox calls appended whenever any node appends to the
// webhook outbox, until ctx ends. In a cluster only the leader delivers,
// and a writer on another node can only wake its own dispatcher: this is
// how the leader's hears of it. appended is also called after the watch
// had to start over (it may have missed an append). It returns once the
// watch is established, so an append committed after it is not missed.
func (s *Store) WatchWebhookOutbox(ctx context.Context, appended func()) error {
	if s.etcd == nil {
		return ErrNotClustered
	}
	e := s.etcd
	prefix := e.prefix + "b/" + string(bucketWebhookOutbox.name) + "/"
	start := func() (clientv3.WatchChan, error) {
		wc := e.cli.Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix(), clientv3.WithCreatedNotify(),
			clientv3.WithFilterDelete())
		select {
		case resp, ok := <-wc:
			if !ok || resp.Err() != nil {
				return nil, e.unavailable(fmt.Errorf("watch webhook outbox: %v", resp.Err()))
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return wc, nil
	}
	wc, err := start()
	if err != nil {
		return err
	}
	go func() {
		for {
			for resp := range wc {
				if resp.Err() != nil {
					break
				}
				if len(resp.Events) > 0 {
					appended()
				}
			}
			if ctx.Err() != nil {
				return
			}
			// Started again from now, not from a revision: the dispatcher
			// reads the whole outbox when woken, so one wake covers the gap.
			for {
				if wc, err = start(); err == nil {
					break
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
			appended()
		}
	}()
	return nil
}
