package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Cluster mode: the nodes that share one etcd store elect one leader, which
// alone runs the timer loop. The election, the lease it rests on and the
// watch that carries deployment changes to the leader live here, behind
// this small API, so etcd's client stays inside store/ and the daemon and
// deployments packages depend only on Fence, Cluster and the callbacks.

// ErrNotClustered is returned by Cluster on the bbolt engine.
var ErrNotClustered = errors.New("cluster mode needs store.type etcd")

// ClusterOptions name this node.
type ClusterOptions struct {
	Node         string        // cluster.node_name
	AdvertiseURL string        // cluster.advertise_url
	LeaseTTL     time.Duration // cluster.lease_ttl (default 10s)
	Logger       *slog.Logger
	// OnLease is told each lease this node holds (intents record it).
	OnLease func(lease int64)
}

// Cluster is this node's membership in the install's cluster.
type Cluster struct {
	e      *etcdEngine
	opts   ClusterOptions
	log    *slog.Logger
	leader atomic.Bool

	mu          sync.Mutex
	leaseID     int64
	leaseExpiry time.Time // conservative: the lease may live longer, never shorter
}

// Cluster returns this node's membership handle (etcd only).
func (s *Store) Cluster(opts ClusterOptions) (*Cluster, error) {
	if s.etcd == nil {
		return nil, ErrNotClustered
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Cluster{e: s.etcd, opts: opts, log: opts.Logger}, nil
}

// LeaseID is the lease this node holds now (0: none).
func (c *Cluster) LeaseID() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leaseID
}

// IsLeader reports whether this node leads now.
func (c *Cluster) IsLeader() bool { return c.leader.Load() }

func (c *Cluster) electionPrefix() string { return c.e.prefix + "election/" }
func (c *Cluster) nodesPrefix() string    { return c.e.prefix + "nodes/" }

// NodeInfo is what a node publishes about itself under its lease.
type NodeInfo struct {
	Name         string    `json:"name"`
	AdvertiseURL string    `json:"advertise_url,omitempty"`
	Since        time.Time `json:"since"`
	Lease        int64     `json:"lease"`
}

// Lead campaigns for leadership until ctx ends. Each time this node wins,
// term runs with a context that ends when leadership ends, and the fence
// that proves it; Lead waits for term to return before campaigning again.
// Leadership ends before the lease can lapse: the node renews its lease
// itself, measuring from before each renewal, and steps down a margin
// ahead of the last renewal's expiry when renewals stop succeeding.
func (c *Cluster) Lead(ctx context.Context, term func(ctx context.Context, fence Fence)) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := c.oneSession(ctx, term)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.log.Warn("cluster: leadership session ended; campaigning again", "node", c.opts.Node, "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, c.opts.LeaseTTL/2)
	}
}

func (c *Cluster) ttlSeconds() int { return max(1, int(math.Ceil(c.opts.LeaseTTL.Seconds()))) }

// stepDownMargin is how long before the lease's conservative expiry a
// leader that cannot renew gives up: enough for the scheduler's context to
// end before another node can win.
func (c *Cluster) stepDownMargin() time.Duration { return c.opts.LeaseTTL / 4 }

func (c *Cluster) oneSession(ctx context.Context, term func(ctx context.Context, fence Fence)) error {
	granted := time.Now()
	sess, err := concurrency.NewSession(c.e.cli, concurrency.WithTTL(c.ttlSeconds()), concurrency.WithContext(ctx))
	if err != nil {
		return c.e.unavailable(err)
	}
	defer func() {
		// Revoking the lease hands leadership over at once on a clean stop.
		_ = sess.Close()
		c.mu.Lock()
		c.leaseID = 0
		c.mu.Unlock()
	}()
	c.mu.Lock()
	c.leaseID, c.leaseExpiry = int64(sess.Lease()), granted.Add(c.opts.LeaseTTL)
	c.mu.Unlock()
	if c.opts.OnLease != nil {
		c.opts.OnLease(int64(sess.Lease()))
	}
	if err := c.publish(ctx, sess); err != nil {
		return err
	}
	el := concurrency.NewElection(sess, c.electionPrefix())
	campaign, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-sess.Done():
			cancel()
		case <-campaign.Done():
		}
	}()
	err = el.Campaign(campaign, c.opts.Node)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("campaign: %w", err)
	}
	// Campaign may have waited long: renew now, so the expiry the term is
	// measured against is fresh.
	if err := c.renew(ctx, sess); err != nil {
		c.resign(el)
		return err
	}
	fence := Fence{Key: el.Key(), Rev: el.Rev()}
	c.log.Info("cluster: this node leads", "node", c.opts.Node, "fence_rev", fence.Rev)
	c.leader.Store(true)
	defer c.leader.Store(false)
	termCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		term(termCtx, fence)
	}()
	end := func(why string) {
		stop()
		c.leader.Store(false)
		<-done
		c.resign(el)
		c.log.Info("cluster: this node stopped leading", "node", c.opts.Node, "why", why)
	}
	renewEvery := c.opts.LeaseTTL / 3
	tick := time.NewTicker(renewEvery)
	defer tick.Stop()
	for {
		c.mu.Lock()
		stepDown := time.Until(c.leaseExpiry.Add(-c.stepDownMargin()))
		c.mu.Unlock()
		deadline := time.NewTimer(stepDown)
		select {
		case <-ctx.Done():
			deadline.Stop()
			end("shutting down")
			return nil
		case <-sess.Done():
			deadline.Stop()
			end("lease lost")
			return errors.New("the leadership lease ended")
		case <-done:
			deadline.Stop()
			end("term ended")
			return nil
		case <-deadline.C:
			end("lease could not be renewed in time")
			return errors.New("stepped down: the lease could not be renewed before it might lapse")
		case <-tick.C:
			deadline.Stop()
			if err := c.renew(ctx, sess); err != nil {
				c.log.Warn("cluster: lease renewal failed", "node", c.opts.Node, "error", err)
			}
		}
	}
}

// renew renews the lease once and moves the conservative expiry to the
// time before the request plus the TTL granted.
func (c *Cluster) renew(ctx context.Context, sess *concurrency.Session) error {
	sent := time.Now()
	rctx, cancel := context.WithTimeout(ctx, c.opts.LeaseTTL/3)
	defer cancel()
	resp, err := c.e.cli.KeepAliveOnce(rctx, sess.Lease())
	if err != nil {
		return c.e.unavailable(err)
	}
	c.mu.Lock()
	c.leaseExpiry = sent.Add(time.Duration(resp.TTL) * time.Second)
	c.mu.Unlock()
	return nil
}

func (c *Cluster) resign(el *concurrency.Election) {
	ctx, cancel := context.WithTimeout(context.Background(), c.e.reqTimeout)
	defer cancel()
	_ = el.Resign(ctx)
}

func (c *Cluster) publish(ctx context.Context, sess *concurrency.Session) error {
	doc, _ := json.Marshal(NodeInfo{Name: c.opts.Node, AdvertiseURL: c.opts.AdvertiseURL, Since: time.Now().UTC(), Lease: int64(sess.Lease())})
	rctx, cancel := context.WithTimeout(ctx, c.e.reqTimeout)
	defer cancel()
	_, err := c.e.cli.Put(rctx, c.nodesPrefix()+c.opts.Node, string(doc), clientv3.WithLease(sess.Lease()))
	return c.e.unavailable(err)
}

// LeaseExpired reports whether lease is gone (its node stopped renewing
// it). An error answers false: an intent is resolved only on proof.
func (c *Cluster) LeaseExpired(lease int64) bool {
	ctx, cancel := context.WithTimeout(context.Background(), c.e.reqTimeout)
	defer cancel()
	resp, err := c.e.cli.TimeToLive(ctx, clientv3.LeaseID(lease))
	return err == nil && resp.TTL <= 0
}

// Status is the cluster as this node sees it.
type Status struct {
	Node      string     `json:"node"`
	Role      string     `json:"role"` // leader or follower
	Leader    string     `json:"leader"`
	Nodes     []NodeInfo `json:"nodes"`
	Endpoints []Endpoint `json:"endpoints"`
	// ReadMirror is this node's copy of the deployment documents.
	ReadMirror MirrorStatus `json:"read_mirror"`
}

// Endpoint is one etcd member's health as seen from this node.
type Endpoint struct {
	URL     string `json:"url"`
	Healthy bool   `json:"healthy"`
	Version string `json:"version,omitempty"`
	Leader  bool   `json:"raft_leader,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Status reads the nodes, the leader and the endpoints' health.
func (c *Cluster) Status(ctx context.Context) (Status, error) {
	st := Status{Node: c.opts.Node, Role: "follower", ReadMirror: c.e.mirrorStatus()}
	if c.IsLeader() {
		st.Role = "leader"
	}
	rctx, cancel := context.WithTimeout(ctx, c.e.reqTimeout)
	defer cancel()
	resp, err := c.e.cli.Get(rctx, c.nodesPrefix(), clientv3.WithPrefix())
	if err != nil {
		return st, c.e.unavailable(err)
	}
	for _, kv := range resp.Kvs {
		var n NodeInfo
		if json.Unmarshal(kv.Value, &n) == nil {
			st.Nodes = append(st.Nodes, n)
		}
	}
	lr, err := c.e.cli.Get(rctx, c.electionPrefix(), clientv3.WithFirstCreate()...)
	if err != nil {
		return st, c.e.unavailable(err)
	}
	if len(lr.Kvs) > 0 {
		st.Leader = string(lr.Kvs[0].Value)
	}
	for _, ep := range c.e.cli.Endpoints() {
		e := Endpoint{URL: ep}
		sctx, scancel := context.WithTimeout(ctx, c.e.reqTimeout)
		s, err := c.e.cli.Status(sctx, ep)
		scancel()
		if err != nil {
			e.Error = err.Error()
		} else {
			e.Healthy, e.Version, e.Leader = true, s.Version, s.Leader == s.Header.MemberId
		}
		st.Endpoints = append(st.Endpoints, e)
	}
	return st, nil
}

// WatchDeployments calls changed with every deployment document written
// after it returns, by any node, until ctx ends; resync is called when the
// watch had to start over and may have missed changes (then every plan
// should be reloaded). It returns once the watch is established, so a Load
// that follows misses nothing.
func (s *Store) WatchDeployments(ctx context.Context, changed func(doc []byte), resync func()) error {
	if s.etcd == nil {
		return ErrNotClustered
	}
	e := s.etcd
	prefix := e.prefix + "b/" + string(bucketDeployments.name) + "/"
	start := func(rev int64) (clientv3.WatchChan, error) {
		opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCreatedNotify()}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		wc := e.cli.Watch(clientv3.WithRequireLeader(ctx), prefix, opts...)
		select {
		case resp, ok := <-wc:
			if !ok || resp.Err() != nil {
				return nil, e.unavailable(fmt.Errorf("watch deployments: %v", resp.Err()))
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return wc, nil
	}
	wc, err := start(0)
	if err != nil {
		return err
	}
	go func() {
		var next int64
		for {
			for resp := range wc {
				if resp.CompactRevision != 0 {
					next = 0
					resync()
					break
				}
				if resp.Err() != nil {
					break
				}
				for _, ev := range resp.Events {
					if ev.Type == clientv3.EventTypePut {
						changed(ev.Kv.Value)
					}
					next = ev.Kv.ModRevision + 1
				}
			}
			if ctx.Err() != nil {
				return
			}
			for {
				if wc, err = start(next); err == nil {
					break
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
			if next == 0 {
				resync()
			}
		}
	}()
	return nil
}
