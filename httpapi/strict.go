package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/sandbox0/sandbox0d/internal/strictjson"
)

// strictBody refuses a request body that repeats an object key, at any
// depth, on every route sandbox0d serves itself (deployments, the local
// session backend, admin): encoding/json would keep the last value
// silently, so the client and the daemon could disagree on what was sent.
// It is the one check for every decoder behind it; the body is read once
// (already capped by limitBody) and handed on from memory. Proxied requests
// are the upstream's to judge.
func (a *API) strictBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if a.isProxied(c) || req.Body == nil || req.Body == http.NoBody {
			return next(c)
		}
		data, err := io.ReadAll(req.Body)
		if err != nil {
			return err // *http.MaxBytesError: a 413 (classify)
		}
		_ = req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(data))
		if err := strictjson.CheckDuplicateKeys(data); err != nil {
			return apiError(http.StatusBadRequest, "%s", err)
		}
		return next(c)
	}
}

// strictBodyBeyondV1 applies strictBody to the routes outside /v1 (admin,
// on the socket only); /v1 requests get it in their group, after the API
// key is checked, so an unauthenticated caller's body is never read.
func (a *API) strictBodyBeyondV1(next echo.HandlerFunc) echo.HandlerFunc {
	strict := a.strictBody(next)
	return func(c echo.Context) error {
		if p := c.Path(); p == "/v1" || strings.HasPrefix(p, "/v1/") {
			return next(c)
		}
		return strict(c)
	}
}

// retryHint answers x-should-retry: false on a 4xx a retry cannot change
// (a validation error, an unknown route, a refused key), so the SDKs, which
// retry on a dropped connection or by default on some statuses, do not send
// the same request again. 408, 409 and 429 are left to the SDK's own rule
// (409 errors already say false where the conflict is permanent, see
// wire.WriteError); a handler that set the header itself wins.
func (a *API) retryHint(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if a.isProxied(c) {
			return next(c)
		}
		res := c.Response()
		res.Before(func() {
			switch s := res.Status; {
			case s < 400 || s >= 500, s == http.StatusRequestTimeout, s == http.StatusConflict, s == http.StatusTooManyRequests:
			case res.Header().Get("x-should-retry") == "":
				res.Header().Set("x-should-retry", "false")
			}
		})
		return next(c)
	}
}
