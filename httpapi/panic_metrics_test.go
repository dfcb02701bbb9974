package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/httpapi"
)

// Regression: recovery wrapped the metrics middleware, so a panicking
// handler's request was never counted.
func TestMiddlewareSeesPanickingRequests(t *testing.T) {
	var seen []int
	count := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			seen = append(seen, c.Response().Status)
			return nil
		}
	}
	e := httpapi.New(httpapi.Config{
		Middleware: []echo.MiddlewareFunc{count},
		Extra:      func(e *echo.Echo) { e.GET("/boom", func(echo.Context) error { panic("boom") }) },
	})
	srv := httptest.NewServer(e)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/boom")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	assert.Equal(t, []int{http.StatusInternalServerError}, seen, "the middleware counted the panicking request")
}
