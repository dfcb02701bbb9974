package daemon

import (
	"context"
	"crypto/subtle"
	"net/http"
)

// idempotencyScope names the caller an Idempotency-Key belongs to: the Unix
// socket (one trust domain, decided by the socket's file mode) or the API
// key a TCP caller presented, by its id, so two keys' callers never replay
// each other's answers and nothing derived from a secret is stored.
func (d *Daemon) idempotencyScope(r *http.Request) string {
	if viaSocket(r) {
		return "socket"
	}
	return "key:" + d.auth.keyID(presentedKey(r))
}

// keyID returns the id of the known key presented (constant time, as
// Check), or "" when it matches none.
func (a *Authenticator) keyID(presented string) string {
	if presented == "" {
		return ""
	}
	h := HashKey(presented)
	a.mu.RLock()
	defer a.mu.RUnlock()
	matched := -1
	for i, k := range a.keys {
		matched = subtle.ConstantTimeSelect(subtle.ConstantTimeCompare(h[:], k.hash[:]), i, matched)
	}
	if matched < 0 {
		return ""
	}
	return a.keys[matched].id
}

// pruneIdempotency drops stored answers past their 24 hours.
func (d *Daemon) pruneIdempotency(ctx context.Context) {
	n, err := d.idem.Prune(ctx)
	if err != nil {
		d.log.Error("idempotency key expiry failed", "error", err)
	} else if n > 0 {
		d.log.Info("expired idempotency keys", "keys", n)
	}
}
