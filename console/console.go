// Package console serves the operator's web pages at /console/: the
// deployments with their next and last runs, one deployment's definition
// and runs, a session's live transcript, failures and webhooks, and the
// actions an operator takes from them (run now, pause, unpause, archive,
// send, interrupt, retry a delivery). Pages are html/template and embedded
// files: no build step, no external asset, a strict Content-Security-Policy
// and a little plain JavaScript (relative times, the live transcript).
//
// It owns the console's access rules (the socket is trusted; on TCP a
// sign-in with an API key sets a cookie bound to the key's id), its
// cross-origin and Host checks, and rendering. It must not hold domain
// rules: every action goes through the same calls as the API (the
// deployments service, the session backend's handler, the webhook
// dispatcher), so validation, webhooks and logs are the API's.
package console

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks"
)

// Prefix is where the console is mounted.
const Prefix = "/console/"

// Keys is what sign-in needs from the daemon's API keys.
type Keys interface {
	// Identify returns a stable id of the valid API key presented ("" and
	// false for an unknown or revoked one).
	Identify(key string) (keyID string, ok bool)
	// Valid reports whether the key with that id is still usable: revoking
	// (or removing) a key ends the console sessions signed in with it.
	Valid(keyID string) bool
}

// Webhooks is the operator's view of webhook deliveries.
type Webhooks interface {
	Overview() (webhooks.Overview, error)
	Deliveries(webhooks.DeliveryQuery) ([]store.WebhookDelivery, error)
	Retry(eventID, endpointURL string) (int, error)
}

// Config wires the console.
type Config struct {
	Service *deployments.Service
	// Sessions is the session backend's handler for /v1/sessions… (the one
	// the API routes to); nil when the backend serves no sessions.
	Sessions http.Handler
	Webhooks Webhooks
	// Cluster reads the nodes, the leader and each node's load for the
	// nodes view (GET /admin/cluster's source); nil on one box, where the
	// view is not offered.
	Cluster func(ctx context.Context) (store.Status, []store.NodeLoad, error)
	Keys    Keys
	// Trusted reports a request that needs no sign-in (the Unix socket).
	Trusted func(*http.Request) bool
	// AllowedHosts returns the host names (besides localhost and IP
	// literals) the console answers to: the Host check against DNS
	// rebinding. A func, so a config reload applies at once; nil: none.
	AllowedHosts func() []string
	Logger       *slog.Logger
	// Now replaces the clock of sign-in sessions (tests).
	Now func() time.Time
}

// Console is the handler mounted at Prefix.
type Console struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	pages   *pages
	signins *signins
	limiter *failLimiter
	handler http.Handler
}

// New builds the console.
func New(cfg Config) *Console {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Trusted == nil {
		cfg.Trusted = func(*http.Request) bool { return false }
	}
	c := &Console{cfg: cfg, log: cfg.Logger, now: cfg.Now, pages: mustParsePages()}
	c.signins = newSignins(cfg.Now)
	c.limiter = newFailLimiter(cfg.Now)

	mux := http.NewServeMux()
	mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", staticFiles()))
	mux.HandleFunc("GET /console/signin", c.signinPage)
	mux.HandleFunc("POST /console/signin", c.signin)
	mux.HandleFunc("POST /console/signout", c.signout)
	mux.HandleFunc("GET /console/{$}", c.needAuth(c.deploymentsPage))
	mux.HandleFunc("GET /console/deployments/{id}", c.needAuth(c.deploymentPage))
	mux.HandleFunc("GET /console/deployments/{id}/archive", c.needAuth(c.archiveConfirmPage))
	mux.HandleFunc("POST /console/deployments/{id}/{action}", c.needAuth(c.deploymentAction))
	mux.HandleFunc("GET /console/sessions", c.needAuth(c.sessionsPage))
	mux.HandleFunc("GET /console/sessions/{id}", c.needAuth(c.sessionPage))
	mux.HandleFunc("GET /console/sessions/{id}/stream", c.needAuth(c.sessionStream))
	mux.HandleFunc("POST /console/sessions/{id}/{action}", c.needAuth(c.sessionAction))
	mux.HandleFunc("GET /console/failures", c.needAuth(c.failuresPage))
	mux.HandleFunc("GET /console/webhooks", c.needAuth(c.webhooksPage))
	mux.HandleFunc("GET /console/nodes", c.needAuth(c.nodesPage))
	mux.HandleFunc("POST /console/webhooks/events/{id}/retry", c.needAuth(c.webhookRetry))
	mux.HandleFunc("/console/", c.needAuth(func(w http.ResponseWriter, r *http.Request) {
		c.errorPage(w, r, http.StatusNotFound, "There is no console page at "+r.URL.Path+".")
	}))

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.errorPage(w, r, http.StatusForbidden, "Cross-origin request refused: a state-changing request must come from a console page itself (this one came from another site or origin).")
	}))
	c.handler = securityHeaders(c.checkHost(cop.Handler(mux)))
	return c
}

// ServeHTTP serves /console and everything under Prefix.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/console" {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	c.handler.ServeHTTP(w, r)
}

// Handles reports whether path belongs to the console.
func Handles(path string) bool { return path == "/console" || strings.HasPrefix(path, Prefix) }

// csp allows only the console's own script and style files: no inline
// script or style, no other origin, no framing, forms to itself only.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/console/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}
