package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/sandbox0/sandbox0d/deployments"
)

// readBody returns the request body, refusing non-JSON content types.
func readBody(c echo.Context) ([]byte, error) {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, apiError(http.StatusRequestEntityTooLarge, "request body exceeds %d bytes", tooBig.Limit)
		}
		return nil, apiError(http.StatusBadRequest, "could not read the request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if ct := c.Request().Header.Get("Content-Type"); ct != "" {
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || (mt != "application/json" && mt != "text/json") {
				return nil, apiError(http.StatusBadRequest, "Content-Type must be application/json, got %q", ct)
			}
		}
	}
	return body, nil
}

// readEmptyBody accepts the bodies of action endpoints: none, empty, or an
// empty JSON object.
func readEmptyBody(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return apiError(http.StatusBadRequest, "request body must be empty or an empty JSON object")
	}
	for k := range obj {
		return apiError(http.StatusBadRequest, "%s: unknown field; this endpoint takes no parameters", k)
	}
	return nil
}

func (a *API) renderDeployment(d *deployments.Deployment) wireDeployment {
	return renderDeployment(d, a.svc.Upcoming(d))
}

func (a *API) createDeployment(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	in, err := deployments.DecodeCreate(body)
	if err != nil {
		return err
	}
	d, err := a.svc.Create(c.Request().Context(), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a.renderDeployment(d))
}

func (a *API) getDeployment(c echo.Context) error {
	var body []byte
	now := a.svc.Now()
	if err := a.svc.ViewStored(c.Request().Context(), c.Param("id"), func(st deployments.Stored) error {
		var err error
		body, err = a.renderStored(st, now) // cached or freshly encoded: never a view of the document
		return err
	}); err != nil {
		return err
	}
	return jsonBody(c, body)
}

// jsonBody writes an encoded JSON value as c.JSON would (newline-terminated).
func jsonBody(c echo.Context, body []byte) error {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	// The length is known: no chunked framing for net/http to add.
	h.Set(echo.HeaderContentLength, strconv.Itoa(len(body)+len(newline)))
	c.Response().WriteHeader(http.StatusOK)
	if _, err := c.Response().Write(body); err != nil {
		return err
	}
	_, err := c.Response().Write(newline)
	return err
}

var newline = []byte("\n")

func (a *API) updateDeployment(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	in, err := deployments.DecodeUpdate(body)
	if err != nil {
		return err
	}
	switch f := c.QueryParam("force"); f {
	case "", "false":
	case "true":
		in.Force = true // a managed deployment may be changed; the next apply restores it
	default:
		return apiError(http.StatusBadRequest, "force: must be true or false, got %q", f)
	}
	d, err := a.svc.Update(c.Request().Context(), c.Param("id"), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a.renderDeployment(d))
}

func (a *API) action(fn func(*deployments.Service, echo.Context, string) (*deployments.Deployment, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := readEmptyBody(c); err != nil {
			return err
		}
		d, err := fn(a.svc, c, c.Param("id"))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, a.renderDeployment(d))
	}
}

func (a *API) pauseDeployment(c echo.Context) error {
	return a.action(func(s *deployments.Service, c echo.Context, id string) (*deployments.Deployment, error) {
		return s.Pause(c.Request().Context(), id)
	})(c)
}

func (a *API) unpauseDeployment(c echo.Context) error {
	return a.action(func(s *deployments.Service, c echo.Context, id string) (*deployments.Deployment, error) {
		return s.Unpause(c.Request().Context(), id)
	})(c)
}

func (a *API) archiveDeployment(c echo.Context) error {
	return a.action(func(s *deployments.Service, c echo.Context, id string) (*deployments.Deployment, error) {
		return s.Archive(c.Request().Context(), id)
	})(c)
}

func (a *API) runDeployment(c echo.Context) error {
	if err := readEmptyBody(c); err != nil {
		return err
	}
	run, err := a.svc.RunNow(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, renderRun(run))
}

func (a *API) listDeployments(c echo.Context) error {
	q, err := parseDeploymentQuery(c.QueryParams())
	if err != nil {
		return err
	}
	// The page is assembled from each deployment's cached wire JSON, in the
	// member order of wireList: {"data":[…],"next_page":…}, while the read
	// transaction is open, so a cached item costs no copy of its document.
	buf := make([]byte, 0, 1024*(q.Limit+1))
	buf = append(buf, `{"data":[`...)
	n := 0
	now := a.svc.Now() // one instant for the page
	token, err := a.svc.EachStored(c.Request().Context(), q, func(st deployments.Stored) error {
		body, err := a.renderStored(st, now)
		if err != nil {
			return err
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		n++
		buf = append(buf, body...)
		return nil
	})
	if err != nil {
		return err
	}
	buf = append(buf, `],"next_page":`...)
	next, err := json.Marshal(nextPage(token))
	if err != nil {
		return err
	}
	buf = append(buf, next...)
	buf = append(buf, '}')
	return jsonBody(c, buf)
}

func (a *API) getRun(c echo.Context) error {
	run, err := a.svc.GetRun(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, renderRun(run))
}

func (a *API) listRuns(c echo.Context) error {
	q, err := parseRunQuery(c.QueryParams())
	if err != nil {
		return err
	}
	page, err := a.svc.ListRuns(c.Request().Context(), q)
	if err != nil {
		return err
	}
	out := wireList[wireRun]{Data: make([]wireRun, 0, len(page.Items))}
	for _, r := range page.Items {
		out.Data = append(out.Data, renderRun(r))
	}
	out.NextPage = nextPage(page.NextPage)
	return c.JSON(http.StatusOK, out)
}

// nextPage renders a listing's next-page token: null on the last page.
func nextPage(token string) *string {
	if token == "" {
		return nil
	}
	return &token
}
