// Package idempotency makes a POST safe to retry: a request that carries an
// Idempotency-Key header runs once per caller and key, and a retry with the
// same key and body gets the first answer (status and body) again instead of
// creating a second deployment, run, session or event. The SDKs re-send a
// POST when the connection drops before the answer arrives, so without this
// a dropped answer to POST /v1/deployments/{id}/run starts a second run.
//
// Rules (docs/api.md says the same):
//   - The key is 1–255 printable ASCII characters; it is scoped to the caller
//     (one API key, or the Unix socket), so two callers cannot collide.
//   - Stored answers last TTL (24 h) from the first request and survive a
//     restart (bbolt); expired keys are pruned and may be used again.
//   - The same key on another route or with another body is a 422 that says
//     so; nothing runs.
//   - A request whose key is in use by one still running waits for it (up to
//     Wait) and then gets its answer; past Wait it is a 409 the SDKs retry.
//   - Answers a retry could change are not stored: 5xx, 408, 409 and 429.
package idempotency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sandbox0/sandbox0d/store"
)

// Header is the request header carrying the key.
const Header = "Idempotency-Key"

// ReplayedHeader marks an answer replayed from the store.
const ReplayedHeader = "Idempotent-Replayed"

// Defaults.
const (
	DefaultTTL  = 24 * time.Hour
	DefaultWait = 10 * time.Second
	// MaxKeyLen bounds a key (Stripe's limit; UUIDs need 36).
	MaxKeyLen = 255
	// maxStoredBody bounds a stored answer; creating routes answer a few KiB.
	maxStoredBody = 4 << 20
	pruneBatch    = 500
)

// Config wires a Guard.
type Config struct {
	Store *store.Store
	// Now is the clock (tests inject one to expire keys).
	Now func() time.Time
	// TTL is how long an answer is replayed (default 24 h).
	TTL time.Duration
	// Wait bounds how long a request waits for one in progress with the
	// same key before answering 409 (default 10 s; negative: do not wait).
	Wait time.Duration
	// Scope names the caller of a request; keys of different scopes never
	// meet. Nil: one scope.
	Scope  func(*http.Request) string
	Logger *slog.Logger
}

// Guard is the idempotency layer.
type Guard struct {
	cfg Config
	mu  sync.Mutex
	// inflight holds a channel per scope+key being executed, closed when
	// it ends, so a concurrent duplicate never runs the handler too.
	inflight map[string]chan struct{}
	waiting  map[string]int // requests waiting per slot
}

// New returns a Guard.
func New(cfg Config) *Guard {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Wait == 0 {
		cfg.Wait = DefaultWait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Guard{cfg: cfg, inflight: map[string]chan struct{}{}, waiting: map[string]int{}}
}

// record is the stored document.
type record struct {
	Method      string    `json:"method"`
	Path        string    `json:"path"`
	BodySHA256  []byte    `json:"body_sha256"`
	Status      int       `json:"status"`
	ContentType string    `json:"content_type,omitempty"`
	Body        []byte    `json:"body"`
	CreatedAt   time.Time `json:"created_at"`
}

// Middleware applies the rules to every POST that carries the header.
func (g *Guard) Middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		key := req.Header.Get(Header)
		if req.Method != http.MethodPost || key == "" {
			return next(c)
		}
		if msg := checkKey(req.Header.Values(Header)); msg != "" {
			return writeError(c, http.StatusBadRequest, msg, false)
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		scope := ""
		if g.cfg.Scope != nil {
			scope = g.cfg.Scope(req)
		}
		release, err := g.acquire(req.Context(), scope+"\x00"+key)
		if err != nil {
			return writeError(c, http.StatusConflict, fmt.Sprintf(
				"a request with Idempotency-Key %q is still in progress; retry it once that request has finished to get its answer", key), true)
		}
		defer release()

		sum := sha256.Sum256(body)
		now := g.cfg.Now()
		prev, found, err := g.lookup(scope, key)
		if err != nil {
			return err
		}
		if found && now.Sub(prev.CreatedAt) < g.cfg.TTL {
			if msg := mismatch(prev, req, sum[:], key); msg != "" {
				return writeError(c, http.StatusUnprocessableEntity, msg, false)
			}
			return replay(c, prev)
		}
		var previous time.Time
		if found {
			previous = prev.CreatedAt // expired: this request takes the key over
		}

		res := c.Response()
		rec := &recorder{ResponseWriter: res.Writer}
		res.Writer = rec
		err = next(c)
		if err != nil {
			c.Error(err) // render now, through the recorder
		}
		res.Writer = rec.ResponseWriter
		if !storable(res.Status) || rec.overflow {
			return nil
		}
		doc, _ := json.Marshal(record{
			Method: req.Method, Path: req.URL.Path, BodySHA256: sum[:], Status: res.Status,
			ContentType: res.Header().Get(echo.HeaderContentType), Body: rec.body.Bytes(), CreatedAt: now,
		})
		if err := g.cfg.Store.Update(func(tx *store.Tx) error {
			return tx.PutIdempotency(scope, key, now, previous, doc)
		}); err != nil {
			// The answer is sent; a retry with this key will run again.
			g.cfg.Logger.Error("idempotency: storing the answer failed; a retry with this key will run the request again",
				"path", req.URL.Path, "status", res.Status, "error", err)
		}
		return nil
	}
}

// acquire claims slot, waiting for a request that holds it.
func (g *Guard) acquire(ctx context.Context, slot string) (release func(), err error) {
	var timeout <-chan time.Time
	if g.cfg.Wait > 0 {
		t := time.NewTimer(g.cfg.Wait)
		defer t.Stop()
		timeout = t.C
	}
	for {
		g.mu.Lock()
		busy, held := g.inflight[slot]
		if !held {
			done := make(chan struct{})
			g.inflight[slot] = done
			g.mu.Unlock()
			return func() {
				g.mu.Lock()
				delete(g.inflight, slot)
				g.mu.Unlock()
				close(done)
			}, nil
		}
		if g.cfg.Wait < 0 {
			g.mu.Unlock()
			return nil, errInProgress
		}
		g.waiting[slot]++
		g.mu.Unlock()
		var err error
		select {
		case <-busy:
		case <-timeout:
			err = errInProgress
		case <-ctx.Done():
			err = ctx.Err()
		}
		g.mu.Lock()
		if g.waiting[slot]--; g.waiting[slot] == 0 {
			delete(g.waiting, slot)
		}
		g.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
}

var errInProgress = errors.New("in progress")

func (g *Guard) lookup(scope, key string) (record, bool, error) {
	var rec record
	var doc []byte
	var found bool
	if err := g.cfg.Store.View(func(tx *store.Tx) error {
		doc, found = tx.GetIdempotency(scope, key)
		return nil
	}); err != nil || !found {
		return rec, false, err
	}
	if err := json.Unmarshal(doc, &rec); err != nil {
		return rec, false, fmt.Errorf("idempotency record for key %q: %w", key, err)
	}
	return rec, true, nil
}

// mismatch explains why req may not reuse prev's key, or returns "".
func mismatch(prev record, req *http.Request, sum []byte, key string) string {
	first := prev.CreatedAt.UTC().Format(time.RFC3339)
	if prev.Method != req.Method || prev.Path != req.URL.Path {
		return fmt.Sprintf("Idempotency-Key %q was first used at %s for %s %s, not %s %s: a key names one request; send a new key for a new request",
			key, first, prev.Method, prev.Path, req.Method, req.URL.Path)
	}
	if !bytes.Equal(prev.BodySHA256, sum) {
		return fmt.Sprintf("Idempotency-Key %q was first used at %s with another request body: a retry must send the same body; send a new key for a new request",
			key, first)
	}
	return ""
}

func replay(c echo.Context, rec record) error {
	h := c.Response().Header()
	if rec.ContentType != "" {
		h.Set(echo.HeaderContentType, rec.ContentType)
	}
	h.Set(ReplayedHeader, "true")
	c.Response().WriteHeader(rec.Status)
	_, err := c.Response().Write(rec.Body)
	return err
}

// storable: answers a retry could change are not kept, so the retry runs.
func storable(status int) bool {
	switch {
	case status >= 500, status == http.StatusRequestTimeout, status == http.StatusConflict, status == http.StatusTooManyRequests:
		return false
	}
	return status >= 200
}

// checkKey validates the header's values.
func checkKey(values []string) string {
	if len(values) > 1 {
		return "Idempotency-Key: sent more than once; send one key per request"
	}
	key := values[0]
	if len(key) > MaxKeyLen {
		return fmt.Sprintf("Idempotency-Key: %d characters, at most %d allowed; a UUID is a good key", len(key), MaxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return "Idempotency-Key: only printable ASCII characters are allowed; a UUID is a good key"
		}
	}
	return ""
}

// recorder keeps a copy of what the handler writes.
type recorder struct {
	http.ResponseWriter
	body     bytes.Buffer
	overflow bool
}

func (r *recorder) Write(p []byte) (int, error) {
	if !r.overflow {
		if r.body.Len()+len(p) > maxStoredBody {
			r.overflow = true
			r.body = bytes.Buffer{}
		} else {
			r.body.Write(p)
		}
	}
	return r.ResponseWriter.Write(p)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Prune deletes answers older than the TTL and returns how many; it works in
// small transactions so it never holds the write lock for long.
func (g *Guard) Prune(ctx context.Context) (int, error) {
	cutoff := g.cfg.Now().Add(-g.cfg.TTL)
	total := 0
	for ctx.Err() == nil {
		var refs []store.IdempotencyRef
		_ = g.cfg.Store.View(func(tx *store.Tx) error {
			refs = tx.IdempotencyOlderThan(cutoff, pruneBatch)
			return nil
		})
		if len(refs) == 0 {
			return total, nil
		}
		if err := g.cfg.Store.Update(func(tx *store.Tx) error {
			for _, ref := range refs {
				if err := tx.DeleteIdempotency(ref); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return total, err
		}
		total += len(refs)
	}
	return total, ctx.Err()
}

// Waiting reports how many requests wait for the one holding scope and key
// (tests use it to know the duplicates have arrived).
func (g *Guard) Waiting(scope, key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waiting[scope+"\x00"+key]
}
