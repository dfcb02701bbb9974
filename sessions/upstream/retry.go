package upstream

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/sandbox0/sandbox0d/sessions"
)

// backoff is capped exponential backoff with full jitter: the wait before
// retry n is uniform in [0, min(max, base·2^(n-1))], which spreads a burst
// of failing creations instead of retrying them in lockstep.
type backoff struct {
	base, max time.Duration
}

var defaultBackoff = backoff{base: 500 * time.Millisecond, max: 30 * time.Second}

func (bo backoff) delay(retry int) time.Duration {
	ceiling := bo.max
	if retry < 32 {
		if d := bo.base << (retry - 1); d > 0 && d < bo.max {
			ceiling = d
		}
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}

// maxRetryAfter bounds a retry-after value so the arithmetic cannot overflow.
const maxRetryAfter = 24 * time.Hour

// retryAfter reads how long the upstream asked to wait: retry-after-ms,
// else retry-after in seconds or as an HTTP date. 0 means no request.
func retryAfter(h http.Header, now time.Time) time.Duration {
	var d time.Duration
	if v := h.Get("retry-after-ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			d = time.Duration(min(ms, float64(maxRetryAfter/time.Millisecond)) * float64(time.Millisecond))
		}
	} else if v := h.Get("retry-after"); v != "" {
		if secs, err := strconv.ParseFloat(v, 64); err == nil && secs > 0 {
			d = time.Duration(min(secs, float64(maxRetryAfter/time.Second)) * float64(time.Second))
		} else if t, err := http.ParseTime(v); err == nil && t.After(now) {
			d = min(t.Sub(now), maxRetryAfter)
		}
	}
	return d
}

// operation is the context one upstream operation classifies its failures
// in: the ids it sent, the secrets to redact, and what to log with.
type operation struct {
	subjects subjects
	redact   redactor
	logAttrs []any
}

// failure builds the classifier's view of a failed attempt: a non-2xx
// answer a, or the transport error err.
func (op operation) failure(c call, a *answer, err error) *failure {
	f := &failure{call: c.String()}
	if err != nil {
		var te *transportError
		if errors.As(err, &te) {
			f.transport = te
		} else {
			f.transport = &transportError{call: f.call, cause: err}
		}
		f.transportText = op.redact.clean(f.transport.Error())
		return f
	}
	f.status = a.status
	f.requestID = op.redact.clean(a.requestID)
	if a.envelope != nil {
		f.enveloped = true
		f.errType = a.envelope.Error.Type
		f.message = a.envelope.Error.Message
	} else {
		f.message = string(a.body)
	}
	f.message = excerpt(op.redact.clean(f.message), 500)
	f.errType = excerpt(op.redact.clean(f.errType), 100)
	f.retryAfter = retryAfter(a.header, time.Now())
	f.about = op.subjects.about(f.message)
	f.archived = archivedWord.MatchString(f.message)
	return f
}

// attemptFunc makes one attempt of an operation. mayBeApplied is true when
// an earlier attempt may have been applied upstream although it failed.
type attemptFunc func(ctx context.Context, mayBeApplied bool) (call, *answer, error)

// withRetries runs attempts until one succeeds, one fails with a final
// classification, the retry window closes, or ctx ends.
func (b *Backend) withRetries(ctx context.Context, op operation, attempt attemptFunc) (*answer, *sessions.RunError) {
	deadline := time.Now().Add(b.retryWindow)
	mayBeApplied := false
	for n := 1; ; n++ {
		c, a, err := attempt(ctx, mayBeApplied)
		if err == nil && a.ok() {
			return a, nil
		}
		f := op.failure(c, a, err)
		if ctx.Err() != nil {
			return nil, interrupted(ctx, n, f)
		}
		r := classify(f)
		if !r.retry {
			return nil, r.runError(f)
		}
		mayBeApplied = mayBeApplied || f.mayHaveApplied()
		wait := f.retryAfter
		if wait == 0 {
			wait = b.backoff.delay(n)
		}
		if remaining := time.Until(deadline); wait > remaining {
			return nil, b.exhausted(n, wait, f)
		}
		b.log.Warn("upstream call failed; retrying", append(op.logAttrs,
			"attempt", n, "wait", wait, "status", f.status, "request_id", f.requestID, "error", f.describe())...)
		if err := sleep(ctx, wait); err != nil {
			return nil, interrupted(ctx, n, f)
		}
	}
}

func (b *Backend) exhausted(attempts int, wait time.Duration, f *failure) *sessions.RunError {
	why := fmt.Sprintf("the upstream kept failing through the retry window (upstream.retry_window %s) after %d attempts", b.retryWindow, attempts)
	if f.retryAfter > 0 && wait == f.retryAfter {
		why = fmt.Sprintf("the upstream asked to retry after %s, past the end of the retry window (upstream.retry_window %s), after %d attempts", f.retryAfter, b.retryWindow, attempts)
	}
	return &sessions.RunError{Type: sessions.ErrUnknown, Message: why + "; last: " + f.describe()}
}

func interrupted(ctx context.Context, attempts int, f *failure) *sessions.RunError {
	return &sessions.RunError{
		Type:    sessions.ErrUnknown,
		Message: fmt.Sprintf("session creation was interrupted (%v) after %d attempts; last: %s", context.Cause(ctx), attempts, f.describe()),
	}
}

// sleep waits d on a real timer (fake time inside a synctest bubble) or
// until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
