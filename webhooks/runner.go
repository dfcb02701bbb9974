package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandbox0/sandbox0d/store"
)

// runner drives one endpoint's deliveries: it reads the next due ones from
// the store (never more than its free slots, so memory does not grow with
// the backlog), makes each attempt, and sleeps until the next is due. One
// runner per endpoint is what keeps a failing endpoint from delaying
// another: each waits only on its own slots and schedule.
type runner struct {
	d      *Dispatcher
	url    string
	ep     atomic.Pointer[endpoint]
	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	// outcomes is the channel of the Run that started this runner.
	outcomes chan<- outcome

	mu sync.Mutex
	// inflight holds every delivery this runner has taken and whose outcome
	// is not yet on disk, so a scan never takes it twice; attempting counts
	// those still waiting for the receiver (the endpoint's slots).
	inflight   map[uint64]bool
	attempting int
}

func (d *Dispatcher) startRunner(ctx context.Context, ep *endpoint) *runner {
	rctx, cancel := context.WithCancel(ctx)
	r := &runner{d: d, url: ep.url, wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{}),
		inflight: map[uint64]bool{}, outcomes: d.outcomes}
	r.ep.Store(ep)
	go func() {
		defer close(r.done)
		r.loop(rctx, ctx)
	}()
	return r
}

func (r *runner) stop() {
	r.cancel()
	<-r.done
}

func (r *runner) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *runner) isInflight(seq uint64) bool { return r.inflight[seq] }

// loop runs until ctx (the runner's) is done. Attempts run under attemptCtx
// (the dispatcher's), so removing an endpoint by reload lets its attempts
// in flight finish and be recorded.
func (r *runner) loop(ctx, attemptCtx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		wait := r.dispatchDue(attemptCtx)
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-timer.C:
		}
	}
}

// dispatchDue starts an attempt for every due delivery it has a slot for
// and returns how long to wait before looking again.
func (r *runner) dispatchDue(ctx context.Context) time.Duration {
	cfg := r.d.cfg.Load()
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	free := cfg.MaxConcurrencyPerEndpoint - r.attempting
	if free <= 0 {
		return maxIdle // an attempt finishing pokes us
	}
	var (
		due  []store.WebhookDelivery
		next time.Time
	)
	err := r.d.st.View(func(tx *store.Tx) error {
		var err error
		due, next, err = tx.DueWebhookDeliveries(r.url, now, free, r.isInflight)
		return err
	})
	if err != nil {
		if ctx.Err() == nil {
			r.d.log.Error("webhook deliveries could not be read", "endpoint", redactURL(r.url), "error", err)
		}
		return time.Second
	}
	for _, dl := range due {
		r.inflight[dl.Seq] = true
		r.attempting++
		r.d.attempts.Add(1)
		go func() {
			defer r.d.attempts.Done()
			r.attempt(ctx, dl)
		}()
	}
	if len(due) == free {
		return maxIdle
	}
	if next.IsZero() {
		return maxIdle
	}
	return min(max(next.Sub(now), 0), maxIdle)
}

// attempt makes one POST of a delivery and records its outcome.
func (r *runner) attempt(ctx context.Context, dl store.WebhookDelivery) {
	if err := r.d.global.acquire(ctx); err != nil {
		return // shutting down: the delivery stays pending
	}
	defer r.d.global.release()
	cfg, ep := r.d.cfg.Load(), r.ep.Load()

	var (
		ev  store.WebhookEvent
		ok  bool
		res attemptResult
	)
	err := r.d.st.View(func(tx *store.Tx) error {
		var err error
		ev, ok, err = tx.GetWebhookEvent(dl.Seq)
		return err
	})
	switch {
	case err != nil:
		res = attemptResult{err: err}
	case !ok:
		res = attemptResult{err: errEventGone, final: true}
	default:
		res = post(ctx, r.d.client, ep, cfg, ev)
	}
	r.mu.Lock()
	r.attempting--
	r.mu.Unlock()
	if ctx.Err() != nil {
		// Cancelled by shutdown, not the receiver's answer: the delivery
		// stays pending and the next process makes the attempt again.
		r.release(dl.Seq)
		return
	}
	r.poke() // the slot is free while the outcome waits for its commit
	r.outcomes <- outcome{r: r, dl: dl, res: res, schedule: cfg.RetrySchedule}
}

// release forgets a delivery whose outcome is on disk (or abandoned).
func (r *runner) release(seq uint64) {
	r.mu.Lock()
	delete(r.inflight, seq)
	r.mu.Unlock()
	r.poke()
}

type attemptResult struct {
	at     time.Time
	took   time.Duration
	status int
	err    error
	final  bool // no retry whatever the schedule says (the receiver aborted)
}

func (a attemptResult) delivered() bool { return a.err == nil && a.status >= 200 && a.status < 300 }

// post signs and sends one attempt. The timestamp is the attempt's, the
// webhook-id the event's, so every attempt is the same message re-signed.
func post(ctx context.Context, client *http.Client, ep *endpoint, cfg *resolved, ev store.WebhookEvent) attemptResult {
	body := renderPayload(ev, cfg.OrganizationID, cfg.WorkspaceID)
	return send(ctx, client, ep, cfg.Timeout, ev.ID, body)
}

func send(ctx context.Context, client *http.Client, ep *endpoint, timeout time.Duration, id string, body []byte) attemptResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res := attemptResult{at: time.Now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.url, bytes.NewReader(body))
	if err != nil {
		res.err, res.final = err, true
		return res
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sandbox0d-webhooks")
	if err := signHeaders(req.Header, ep.signers, id, res.at, body); err != nil {
		res.err = err
		return res
	}
	resp, err := client.Do(req)
	res.took = time.Since(res.at)
	if err != nil {
		res.err = describeError(err, ctx, timeout)
		return res
	}
	// Drain a little so the connection can be reused; the body is ignored.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	res.status = resp.StatusCode
	if res.delivered() {
		return res
	}
	res.err = fmt.Errorf("HTTP %d", resp.StatusCode)
	if strings.EqualFold(strings.TrimSpace(resp.Header.Get("webhook-delivery")), "abort-message") {
		res.err = fmt.Errorf("HTTP %d with webhook-delivery: abort-message", resp.StatusCode)
		res.final = true
	}
	return res
}

// describeError says what went wrong without the URL (its query may hold
// a token) and names a timeout as one.
func describeError(err error, ctx context.Context, timeout time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no response within %s", timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// outcome is an attempt's result waiting to be written.
type outcome struct {
	r        *runner
	dl       store.WebhookDelivery
	res      attemptResult
	schedule []time.Duration
	after    store.WebhookDelivery // the delivery as written
}

// recordBatch bounds one group commit of outcomes.
const recordBatch = 256

// recordLoop writes outcomes in group commits: one transaction (one fsync)
// for every outcome that arrived while the previous one committed, so
// throughput to a fast receiver is not one fsync per delivery. It returns
// when outcomes is closed and drained.
func (d *Dispatcher) recordLoop(outcomes <-chan outcome) {
	batch := make([]outcome, 0, recordBatch)
	for o := range outcomes {
		batch = append(batch[:0], o)
	more:
		for len(batch) < recordBatch {
			select {
			case o, ok := <-outcomes:
				if !ok {
					break more
				}
				batch = append(batch, o)
			default:
				break more
			}
		}
		d.record(batch)
	}
}

func (d *Dispatcher) record(batch []outcome) {
	err := d.st.Update(func(tx *store.Tx) error {
		for i := range batch {
			after, err := applyOutcome(tx, batch[i])
			if err != nil {
				return err
			}
			batch[i].after = after
		}
		return nil
	})
	for _, o := range batch {
		o.r.release(o.dl.Seq)
		if err != nil {
			d.log.Error("webhook attempt could not be recorded; it will be made again", "endpoint", redactURL(o.dl.Endpoint),
				"event_id", o.dl.EventID, "error", err)
			continue
		}
		d.report(o)
	}
}

// applyOutcome writes the attempt and the delivery's next state. It is a
// pure function of the transaction.
func applyOutcome(tx *store.Tx, o outcome) (store.WebhookDelivery, error) {
	cur, ok, err := tx.GetWebhookDelivery(o.dl.Endpoint, o.dl.Seq)
	if err != nil || !ok {
		return store.WebhookDelivery{}, err // pruned meanwhile: nothing to record
	}
	res := o.res
	a := store.WebhookAttempt{At: res.at.UTC(), StatusCode: res.status, Duration: res.took}
	if res.err != nil {
		a.Error = res.err.Error()
	}
	cur.AddAttempt(a)
	if cur.Requeues != o.dl.Requeues {
		// An operator retry came while this attempt was in flight: it is
		// logged, and the retry's fresh schedule stands.
		return cur, tx.PutWebhookDelivery(cur)
	}
	now := res.at.Add(res.took).UTC()
	switch {
	case res.delivered():
		cur.Status, cur.FinishedAt = store.DeliveryDelivered, now
	case res.final || cur.Retries >= len(o.schedule):
		cur.Status, cur.FinishedAt = store.DeliveryFailed, now
	default:
		cur.NextAttemptAt = now.Add(o.schedule[cur.Retries])
		cur.Retries++
	}
	return cur, tx.PutWebhookDelivery(cur)
}

// report tells metrics and, for a failed attempt, the log (one line per
// failed attempt; the URL without query, never the payload or a key).
func (d *Dispatcher) report(o outcome) {
	after := o.after
	if after.Endpoint == "" {
		return
	}
	result := ResultRetrying
	switch {
	case o.res.delivered():
		result = ResultDelivered
	case after.Status == store.DeliveryFailed:
		result = ResultFailed
	}
	if d.observe != nil {
		d.observe(result, o.res.took)
	}
	if result == ResultDelivered {
		return
	}
	attrs := []any{"endpoint", redactURL(o.dl.Endpoint), "event_id", o.dl.EventID, "event_type", o.dl.EventType,
		"attempt", after.AttemptCount, "error", o.res.err.Error()}
	if result == ResultRetrying {
		attrs = append(attrs, "next_attempt_at", after.NextAttemptAt.Format(time.RFC3339))
		d.log.Warn("webhook attempt failed; will retry", attrs...)
	} else {
		d.log.Error("webhook delivery failed for good", attrs...)
	}
}

// redactURL keeps scheme, host and path: a query or user info may carry a
// token.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
