// Package webhooks reads the outbox that store keeps and delivers it: it
// fans each committed event out to the endpoints that want it, signs every
// attempt with the Standard Webhooks library, POSTs, retries on a fixed
// schedule with the same webhook-id, and keeps the delivery log the operator
// commands read. Every state change is on disk before the next step, so a
// restart resumes where the last process stopped and a long outage costs
// disk, not memory. It must not know how the changes it announces are made:
// deployments and sessions append events inside their own transactions.
package webhooks

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandbox0/sandbox0d/store"
)

// Results of an attempt, for metrics.
const (
	ResultDelivered = "delivered"
	ResultRetrying  = "retrying" // failed, another attempt is scheduled
	ResultFailed    = "failed"   // failed for good (last retry, or the receiver aborted)
)

// Options wire a Dispatcher.
type Options struct {
	Store  *store.Store
	Logger *slog.Logger
	// Transport replaces the HTTP transport (tests).
	Transport http.RoundTripper
	// Observe, when set, is told about every attempt and how long it took.
	Observe func(result string, took time.Duration)
}

// Dispatcher delivers the outbox. Its methods are safe for concurrent use.
type Dispatcher struct {
	st      *store.Store
	log     *slog.Logger
	client  *http.Client
	observe func(string, time.Duration)

	cfg    atomic.Pointer[resolved]
	wake   chan struct{} // new events in the outbox; capacity 1 coalesces bursts
	global *semaphore

	mu       sync.Mutex
	runners  map[string]*runner
	runCtx   context.Context // nil outside Run
	attempts sync.WaitGroup
	outcomes chan outcome // this Run's attempts' results, written by recordLoop in group commits
}

// fanOutBatch bounds one fan-out transaction (and the memory it needs).
const fanOutBatch = 256

// maxIdle caps every wait so a clock step is noticed within a minute.
const maxIdle = time.Minute

// New validates cfg and returns a dispatcher that delivers once Run is called.
func New(cfg Config, opts Options) (*Dispatcher, error) {
	r, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	tr := opts.Transport
	if tr == nil {
		tr = &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: DefaultMaxConcurrencyPerEndpoint,
			IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second, ForceAttemptHTTP2: true}
	}
	d := &Dispatcher{
		st: opts.Store, log: opts.Logger, observe: opts.Observe,
		// Redirects are not followed: a 3xx is not a delivery.
		client:  &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		wake:    make(chan struct{}, 1),
		global:  newSemaphore(r.MaxConcurrency),
		runners: map[string]*runner{},
	}
	d.cfg.Store(r)
	return d, nil
}

// Enabled reports whether any endpoint is configured. Writers skip
// appending events when none is, so a daemon without webhooks pays nothing.
func (d *Dispatcher) Enabled() bool { return d != nil && len(d.cfg.Load().endpoints) > 0 }

// Notify tells the dispatcher that a transaction that appended events
// committed. It never blocks.
func (d *Dispatcher) Notify() {
	if d == nil {
		return
	}
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Reload swaps the configuration: endpoints added start delivering,
// endpoints removed stop (their pending deliveries stay on disk and resume
// if the endpoint returns), and keys, filters and limits apply to the next
// attempt.
func (d *Dispatcher) Reload(cfg Config) error {
	r, err := cfg.resolve()
	if err != nil {
		return err
	}
	d.cfg.Store(r)
	d.global.setLimit(r.MaxConcurrency)
	d.mu.Lock()
	if d.runCtx != nil {
		d.syncRunnersLocked()
	}
	d.mu.Unlock()
	d.Notify()
	return nil
}

// Run delivers until ctx is done. Attempts in flight are cancelled then and
// stay pending, to be made again by the next process (or the next Run: in
// a cluster each leadership term runs the dispatcher once, so a node that
// leads again delivers again). Runs must not overlap.
func (d *Dispatcher) Run(ctx context.Context) error {
	outcomes := make(chan outcome, recordBatch)
	d.mu.Lock()
	d.runCtx, d.outcomes = ctx, outcomes
	d.syncRunnersLocked()
	d.mu.Unlock()
	var bg sync.WaitGroup
	bg.Go(func() { d.pruneLoop(ctx) })
	recorded := make(chan struct{})
	go func() { defer close(recorded); d.recordLoop(outcomes) }()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if err := d.fanOut(); err != nil && ctx.Err() == nil {
			d.log.Error("webhook fan-out failed", "error", err)
		}
		timer.Reset(maxIdle)
		select {
		case <-ctx.Done():
			d.mu.Lock()
			for url, r := range d.runners {
				r.stop()
				delete(d.runners, url)
			}
			// A reload after Run starts no runner.
			d.runCtx = nil
			d.mu.Unlock()
			bg.Wait()
			d.attempts.Wait()
			// Answers already received are written before Run returns.
			close(outcomes)
			<-recorded
			return nil
		case <-d.wake:
		case <-timer.C:
		}
	}
}

// syncRunnersLocked makes the runners match the configured endpoints.
func (d *Dispatcher) syncRunnersLocked() {
	want := map[string]*endpoint{}
	for _, ep := range d.cfg.Load().endpoints {
		want[ep.url] = ep
	}
	for url, r := range d.runners {
		if _, ok := want[url]; !ok {
			r.stop()
			delete(d.runners, url)
		}
	}
	for url, ep := range want {
		if r, ok := d.runners[url]; ok {
			r.ep.Store(ep)
			r.poke()
			continue
		}
		d.runners[url] = d.startRunner(d.runCtx, ep)
	}
}

// fanOut turns every outbox event into pending deliveries, one bounded
// transaction at a time, then wakes the endpoints that got work.
func (d *Dispatcher) fanOut() error {
	for {
		cfg := d.cfg.Load()
		touched := map[string]bool{}
		n := 0
		err := d.st.Update(func(tx *store.Tx) error {
			clear(touched)
			events, err := tx.OutboxWebhookEvents(fanOutBatch)
			if err != nil {
				return err
			}
			n = len(events)
			now := time.Now().UTC()
			for _, e := range events {
				var urls []string
				for _, ep := range cfg.endpoints {
					if ep.wants(e.Type) {
						urls = append(urls, ep.url)
						touched[ep.url] = true
					}
				}
				if err := tx.FanOutWebhookEvent(e, urls, now); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		d.poke(touched)
		if n < fanOutBatch {
			return nil
		}
	}
}

func (d *Dispatcher) poke(urls map[string]bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for url := range urls {
		if r, ok := d.runners[url]; ok {
			r.poke()
		}
	}
}

// pruneInterval is how often delivered and failed deliveries past retention
// are deleted.
const pruneInterval = time.Hour

const pruneBatch = 1000

func (d *Dispatcher) pruneLoop(ctx context.Context) {
	timer := time.NewTimer(time.Minute)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if n, err := d.Prune(ctx, time.Now().Add(-d.cfg.Load().Retention)); err != nil {
			d.log.Error("webhook retention failed", "error", err)
		} else if n > 0 {
			d.log.Info("pruned webhook deliveries beyond retention", "records", n)
		}
		timer.Reset(pruneInterval)
	}
}

// Prune deletes deliveries that finished before cutoff and events with no
// delivery left, in bounded transactions.
func (d *Dispatcher) Prune(ctx context.Context, cutoff time.Time) (int, error) {
	total := 0
	for ctx.Err() == nil {
		n := 0
		if err := d.st.Update(func(tx *store.Tx) error {
			var err error
			n, err = tx.PruneWebhooks(cutoff, pruneBatch)
			return err
		}); err != nil {
			return total, err
		}
		total += n
		if n < pruneBatch {
			break
		}
	}
	return total, nil
}

// semaphore is a counting semaphore whose limit can change (config reload).
type semaphore struct {
	mu      sync.Mutex
	n, max  int
	changed chan struct{}
}

func newSemaphore(limit int) *semaphore {
	return &semaphore{max: limit, changed: make(chan struct{})}
}

func (s *semaphore) acquire(ctx context.Context) error {
	for {
		s.mu.Lock()
		if s.n < s.max {
			s.n++
			s.mu.Unlock()
			return nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *semaphore) release() {
	s.mu.Lock()
	s.n--
	s.broadcastLocked()
	s.mu.Unlock()
}

func (s *semaphore) setLimit(limit int) {
	s.mu.Lock()
	s.max = limit
	s.broadcastLocked()
	s.mu.Unlock()
}

func (s *semaphore) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

var errEventGone = errors.New("the event was pruned before it could be delivered")
