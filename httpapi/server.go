// Package httpapi serves the Deployments API with echo: routes, the
// anthropic-beta check, request ids, body limits, query parsing, wire
// rendering and the error envelope. It must not hold domain rules (those
// live in deployments) or know the store: page tokens come from and go to
// the service as strings.
package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/internal/wire"
	"github.com/sandbox0/sandbox0d/sessions"
)

// BetaHeader is the beta the Deployments API requires.
const BetaHeader = "managed-agents-2026-04-01"

// DefaultBodyLimit is the largest request body accepted.
const DefaultBodyLimit = 1 << 20

// MaxQueryLen bounds the query string; no listing needs more than a few
// hundred bytes (a cursor and some filters).
const MaxQueryLen = 8 << 10

// Config wires the API.
type Config struct {
	Service *deployments.Service
	// Sessions serves every other /v1 route (sessions, events, …); nil → 404.
	Sessions http.Handler
	// SessionsProxied says Sessions is a reverse proxy (see ProxiesSessions):
	// its requests skip BodyLimit and the beta check, which belong to
	// sandbox0d's own routes; the proxy caps bodies itself.
	SessionsProxied bool
	Logger          *slog.Logger
	// BodyLimit in bytes (default 1 MiB).
	BodyLimit int64
	// Authorize, when set, decides whether a /v1 request may proceed; it
	// returns a message for the 401 when not.
	Authorize func(r *http.Request) (ok bool, message string)
	// Extra registers further routes (health, metrics, admin) on the same server.
	Extra func(e *echo.Echo)
	// Middleware wraps every request (metrics); optional.
	Middleware []echo.MiddlewareFunc
	// OwnRoutes wraps the /v1 routes sandbox0d serves itself (deployments,
	// runs, the local session backend), after the beta check and
	// authorization, and not requests for the reverse proxy (idempotency
	// keys); optional.
	OwnRoutes []echo.MiddlewareFunc
}

// API is the HTTP surface.
type API struct {
	svc   *deployments.Service
	log   *slog.Logger
	limit int64
	// proxied: the catch-all route is a reverse proxy.
	proxied bool
	// rendered caches each deployment's wire JSON per stored revision.
	rendered *renderCache
}

// New builds the echo instance serving the API.
func New(cfg Config) *echo.Echo {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	a := &API{svc: cfg.Service, log: cfg.Logger, limit: cfg.BodyLimit, proxied: cfg.SessionsProxied && cfg.Sessions != nil, rendered: newRenderCache()}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = a.handleError
	e.Pre(requestID)
	// The middleware (metrics) wraps recovery, so a panicking request is
	// counted with the 500 it becomes.
	for _, m := range cfg.Middleware {
		e.Use(m)
	}
	e.Use(recoverPanics(cfg.Logger))
	e.Use(a.limitBody)
	e.Use(a.retryHint)
	e.Use(a.strictBodyBeyondV1)

	v1 := e.Group("/v1", a.requireBeta, authorize(cfg.Authorize), a.strictBody, a.ownRoutes(cfg.OwnRoutes))
	v1.POST("/deployments", a.createDeployment)
	v1.GET("/deployments", a.listDeployments)
	v1.GET("/deployments/:id", a.getDeployment)
	v1.POST("/deployments/:id", a.updateDeployment)
	v1.POST("/deployments/:id/pause", a.pauseDeployment)
	v1.POST("/deployments/:id/unpause", a.unpauseDeployment)
	v1.POST("/deployments/:id/archive", a.archiveDeployment)
	v1.POST("/deployments/:id/run", a.runDeployment)
	v1.POST("/deployment_sets/:set/plan", a.planSet)
	v1.POST("/deployment_sets/:set/apply", a.applySetRoute)
	v1.GET("/deployment_runs", a.listRuns)
	v1.GET("/deployment_runs/:id", a.getRun)
	if cfg.Sessions != nil {
		if a.proxied {
			v1.Any("/*", a.proxyRoute(cfg.Sessions))
		} else {
			v1.Any("/*", echo.WrapHandler(cfg.Sessions))
		}
	} else {
		v1.Any("/*", func(c echo.Context) error {
			return apiError(http.StatusNotFound, "no route for %s %s", c.Request().Method, c.Request().URL.Path)
		})
	}
	if cfg.Extra != nil {
		cfg.Extra(e)
	}
	return e
}

// SessionHandler returns the backend's session routes, if it serves any.
func SessionHandler(b sessions.Backend) http.Handler {
	if r, ok := b.(sessions.SessionRouter); ok {
		return r.SessionHandler()
	}
	return nil
}

// ProxiesSessions reports whether the backend's session routes are a
// reverse proxy (Config.SessionsProxied).
func ProxiesSessions(b sessions.Backend) bool {
	p, ok := b.(sessions.SessionProxy)
	return ok && p.ProxiesSessions()
}

// isProxied reports a request for the reverse proxy: the catch-all route
// (sessionview.go adds deployment_id to the session objects it answers).
func (a *API) isProxied(c echo.Context) bool { return a.proxied && c.Path() == "/v1/*" }

// requestID sets the request-id header on every response, reusing a sane
// incoming Request-Id / X-Request-Id.
func requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get("Request-Id")
		if id == "" {
			id = c.Request().Header.Get("X-Request-Id")
		}
		if !saneRequestID(id) {
			id = wire.NewRequestID()
		}
		c.Response().Header().Set(wire.RequestIDHeader, id)
		return next(c)
	}
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if r <= ' ' || r > '~' {
			return false
		}
	}
	return true
}

// requireBeta refuses requests whose anthropic-beta header does not contain
// the Managed Agents beta (clients may send several, comma-separated).
// Proxied requests carry whatever beta their API needs, or none.
func (a *API) requireBeta(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if a.isProxied(c) {
			return next(c)
		}
		for _, v := range c.Request().Header.Values("anthropic-beta") {
			for b := range strings.SplitSeq(v, ",") { // no allocation per request
				if strings.TrimSpace(b) == BetaHeader {
					return next(c)
				}
			}
		}
		return apiError(http.StatusBadRequest, "the anthropic-beta header must include %q to use this API", BetaHeader)
	}
}

// ownRoutes applies mws to every /v1 request but the proxied ones.
func (a *API) ownRoutes(mws []echo.MiddlewareFunc) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		own := next
		for i := len(mws) - 1; i >= 0; i-- {
			own = mws[i](own)
		}
		return func(c echo.Context) error {
			if a.isProxied(c) {
				return next(c)
			}
			return own(c)
		}
	}
}

func authorize(fn func(*http.Request) (bool, string)) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if fn == nil {
			return next
		}
		return func(c echo.Context) error {
			if ok, msg := fn(c.Request()); !ok {
				return apiError(http.StatusUnauthorized, "%s", msg)
			}
			return next(c)
		}
	}
}

// limitBody caps request bodies; an oversized one becomes a 413.
func (a *API) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if n := len(req.URL.RawQuery); n > MaxQueryLen {
			return apiError(http.StatusBadRequest, "query string is %d bytes, at most %d allowed", n, MaxQueryLen)
		}
		if a.isProxied(c) {
			return next(c) // the proxy applies its own, larger cap
		}
		if req.ContentLength > a.limit {
			return apiError(http.StatusRequestEntityTooLarge, "request body is %d bytes, at most %d allowed", req.ContentLength, a.limit)
		}
		if req.Body != http.NoBody { // net/http's value for "no body": nothing to cap
			req.Body = http.MaxBytesReader(c.Response(), req.Body, a.limit)
		}
		return next(c)
	}
}

func recoverPanics(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				if r := recover(); r != nil {
					if r == http.ErrAbortHandler {
						panic(r)
					}
					// Log the panic value's type only: values may hold request data.
					log.Error("panic in handler", "path", c.Path(), "panic_type", typeName(r))
					err = apiError(http.StatusInternalServerError, "internal error")
				}
			}()
			return next(c)
		}
	}
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }
