package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/internal/listparams"
	"github.com/sandbox0/sandbox0d/internal/wire"
)

// Sessions of deployments, through the proxy. The upstream does not know
// that sandbox0d's sessions belong to a deployment (their deployment_id is
// null there), so:
//
//   - GET /v1/sessions?deployment_id=… is answered from the daemon's own
//     records: the deployment's runs name their sessions, newest first, and
//     each session is read from the upstream through the proxy;
//   - the session objects of GET /v1/sessions and GET /v1/sessions/{id} get
//     deployment_id filled in when the daemon's records say which run
//     created them.

// maxViewedBody bounds the upstream answers buffered to fill deployment_id;
// larger ones pass through unchanged.
const maxViewedBody = 16 << 20

// sessionListParams are the parameters that may accompany deployment_id
// (the others filter what the upstream lists, which this listing is not).
var sessionListParams = []string{"deployment_id", "include_archived", "limit", "page"}

// proxyRoute serves the catch-all route: GET /v1/sessions and
// GET /v1/sessions/{id} (exactly: not their events or streams) are viewed,
// everything else goes to the proxy untouched.
func (a *API) proxyRoute(proxy http.Handler) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Method != http.MethodGet {
			proxy.ServeHTTP(c.Response(), r)
			return nil
		}
		rest, ok := strings.CutPrefix(r.URL.Path, "/v1/sessions")
		switch {
		case ok && rest == "":
			if c.QueryParams().Has("deployment_id") {
				return a.listDeploymentSessions(c, proxy)
			}
			return a.viewSessions(c, proxy, true)
		case ok && len(rest) > 1 && rest[0] == '/' && !strings.Contains(rest[1:], "/"):
			return a.viewSessions(c, proxy, false)
		}
		proxy.ServeHTTP(c.Response(), r)
		return nil
	}
}

// viewSessions proxies the request and fills deployment_id into the
// session (or each session of the list) it answers with.
func (a *API) viewSessions(c echo.Context, proxy http.Handler, list bool) error {
	rec := newBufferedResponse()
	// The proxy answers with the upstream's request id, or this one.
	rec.header.Set(wire.RequestIDHeader, c.Response().Header().Get(wire.RequestIDHeader))
	c.Response().Header().Del(wire.RequestIDHeader)
	proxy.ServeHTTP(rec, c.Request())
	body := rec.body.Bytes()
	if rec.status == http.StatusOK && rec.body.Len() <= maxViewedBody && isJSON(rec.header) {
		if filled, ok := a.fillDeploymentIDs(body, list); ok {
			body = filled
			rec.header.Del("Content-Length")
		}
	}
	w := c.Response()
	for k, vs := range rec.header {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.status)
	_, err := w.Write(body)
	return err
}

func isJSON(h http.Header) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == "application/json"
}

// fillDeploymentIDs sets deployment_id on a session object, or on each
// object of a list's data, where it is null and the daemon knows the run
// that created the session. Other members are kept byte for byte.
func (a *API) fillDeploymentIDs(body []byte, list bool) ([]byte, bool) {
	if !list {
		out, changed := a.fillDeploymentID(body)
		return out, changed
	}
	var page map[string]json.RawMessage
	if json.Unmarshal(body, &page) != nil {
		return nil, false
	}
	var items []json.RawMessage
	if json.Unmarshal(page["data"], &items) != nil {
		return nil, false
	}
	changed := false
	for i, item := range items {
		if out, ok := a.fillDeploymentID(item); ok {
			items[i], changed = out, true
		}
	}
	if !changed {
		return nil, false
	}
	page["data"], _ = json.Marshal(items)
	out, err := json.Marshal(page)
	return out, err == nil
}

func (a *API) fillDeploymentID(raw []byte) ([]byte, bool) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return nil, false
	}
	if v, ok := obj["deployment_id"]; ok && string(bytes.TrimSpace(v)) != "null" {
		return nil, false
	}
	var head struct {
		ID       string            `json:"id"`
		Metadata map[string]string `json:"metadata"`
	}
	if json.Unmarshal(raw, &head) != nil || head.ID == "" {
		return nil, false
	}
	depl, ok := a.svc.DeploymentOfSession(head.ID, head.Metadata["sandbox0d.deployment_run_id"])
	if !ok {
		return nil, false
	}
	obj["deployment_id"], _ = json.Marshal(depl)
	out, err := json.Marshal(obj)
	return out, err == nil
}

// listDeploymentSessions answers GET /v1/sessions?deployment_id=… from the
// deployment's runs: one page of runs that created a session, each session
// read from the upstream. Sessions the upstream no longer has are left out.
func (a *API) listDeploymentSessions(c echo.Context, proxy http.Handler) error {
	v := c.QueryParams()
	if err := listparams.Known(v, sessionListParams...); err != nil {
		return apiError(http.StatusBadRequest, "%s (sandbox0d answers deployment_id from its own run records, which only take %s)",
			err.Error(), strings.Join(sessionListParams, ", "))
	}
	limit, err := listparams.Limit(v, 20, 100)
	if err != nil {
		return badParam(err)
	}
	inc, err := listparams.Bool(v, "include_archived")
	if err != nil {
		return badParam(err)
	}
	noError := false
	page, err := a.svc.ListRuns(c.Request().Context(), deployments.RunQuery{
		DeploymentID: v.Get("deployment_id"), HasError: &noError, Limit: limit, Page: v.Get("page"),
	})
	if err != nil {
		return err
	}
	out := struct {
		Data     []json.RawMessage `json:"data"`
		NextPage *string           `json:"next_page"`
	}{Data: []json.RawMessage{}, NextPage: nextPage(page.NextPage)}
	for _, run := range page.Items {
		if run.SessionID == "" {
			continue
		}
		sess, status, err := a.proxiedGet(c, proxy, "/v1/sessions/"+url.PathEscape(run.SessionID))
		if err != nil {
			return err
		}
		if status == http.StatusNotFound {
			continue
		}
		if status != http.StatusOK {
			return apiError(http.StatusBadGateway, "reading session %s of deployment run %s from the upstream: it answered %d", run.SessionID, run.ID, status)
		}
		var head struct {
			ArchivedAt json.RawMessage `json:"archived_at"`
		}
		_ = json.Unmarshal(sess, &head)
		if archived := len(head.ArchivedAt) > 0 && string(head.ArchivedAt) != "null"; archived && (inc == nil || !*inc) {
			continue
		}
		if filled, ok := a.fillDeploymentID(sess); ok {
			sess = filled
		}
		out.Data = append(out.Data, sess)
	}
	return c.JSON(http.StatusOK, out)
}

// proxiedGet reads one upstream object through the proxy with the client's
// own headers.
func (a *API) proxiedGet(c echo.Context, proxy http.Handler, path string) ([]byte, int, error) {
	orig := c.Request()
	req, err := http.NewRequestWithContext(orig.Context(), http.MethodGet, path, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("build session lookup: %w", err)
	}
	req.Header = orig.Header.Clone()
	req.Header.Del("Content-Length")
	req.Host = orig.Host
	rec := newBufferedResponse()
	proxy.ServeHTTP(rec, req)
	return rec.body.Bytes(), rec.status, nil
}

// bufferedResponse collects a proxied answer in memory.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newBufferedResponse() *bufferedResponse {
	return &bufferedResponse{header: http.Header{}, status: http.StatusOK}
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferedResponse) WriteHeader(status int)      { b.status = status }
func (b *bufferedResponse) Flush()                      {}
