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

	mu       sync.Mutex
	inflight map[uint64]bool
}

func (d *Dispatcher) startRunner(ctx context.Context, ep *endpoint) *runner {
	rctx, cancel := context.WithCancel(ctx)
	r := &runner{d: d, url: ep.url, wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{}),
		inflight: map[uint64]bool{}}
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
	free := cfg.MaxConcurrencyPerEndpoint - len(r.inflight)
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
		r.d.attempts.Add(1)
		go func() {
			defer r.d.attempts.Done()
			r.attempt(ctx, dl)
			r.mu.Lock()
			delete(r.inflight, dl.Seq)
			r.mu.Unlock()
			r.poke()
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
	if ctx.Err() != nil {
		return // cancelled by shutdown, not the receiver's answer: try again after restart
	}
	r.record(dl, res, cfg.RetrySchedule)
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

// record writes the attempt and the delivery's next state. It is a pure
// function of the transaction, as Batch requires.
func (r *runner) record(dl store.WebhookDelivery, res attemptResult, schedule []time.Duration) {
	var after store.WebhookDelivery
	err := r.d.st.Batch(func(tx *store.Tx) error {
		cur, ok, err := tx.GetWebhookDelivery(dl.Endpoint, dl.Seq)
		if err != nil || !ok {
			return err // pruned meanwhile: nothing to record
		}
		a := store.WebhookAttempt{At: res.at.UTC(), StatusCode: res.status, Duration: res.took}
		if res.err != nil {
			a.Error = res.err.Error()
		}
		cur.AddAttempt(a)
		now := res.at.Add(res.took).UTC()
		switch {
		case res.delivered():
			cur.Status, cur.FinishedAt = store.DeliveryDelivered, now
		case res.final || cur.Retries >= len(schedule):
			cur.Status, cur.FinishedAt = store.DeliveryFailed, now
		default:
			cur.NextAttemptAt = now.Add(schedule[cur.Retries])
			cur.Retries++
		}
		after = cur
		return tx.PutWebhookDelivery(cur)
	})
	if err != nil {
		r.d.log.Error("webhook attempt could not be recorded; it will be made again", "endpoint", redactURL(dl.Endpoint),
			"event_id", dl.EventID, "error", err)
		return
	}
	result := ResultDelivered
	switch {
	case after.Status == store.DeliveryFailed:
		result = ResultFailed
	case after.Status == store.DeliveryPending:
		result = ResultRetrying
	}
	if r.d.observe != nil {
		r.d.observe(result, res.took)
	}
	if result == ResultDelivered || after.Endpoint == "" {
		return
	}
	attrs := []any{"endpoint", redactURL(dl.Endpoint), "event_id", dl.EventID, "event_type", dl.EventType,
		"attempt", after.AttemptCount, "error", res.err.Error()}
	if result == ResultRetrying {
		attrs = append(attrs, "next_attempt_at", after.NextAttemptAt.Format(time.RFC3339))
		r.d.log.Warn("webhook attempt failed; will retry", attrs...)
	} else {
		r.d.log.Error("webhook delivery failed for good", attrs...)
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
