package daemon_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
)

// Hostile requests over the wire get a clear 4xx and the daemon keeps serving.
func TestHostileRequests(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := baseConfig(dir)
	cfg.Listen = "127.0.0.1:0"
	cfg.Auth.APIKeys = []string{"s0d_hostile"}
	limits := daemon.DefaultServerLimits
	limits.ReadHeaderTimeout = 300 * time.Millisecond
	r := start(t, cfg, daemon.Options{Backend: sessionstest.New(map[string]int64{"agent_a": 1}), Limits: &limits})
	base := "http://" + r.d.TCPAddr().String()

	send := func(method, path, contentType string, body io.Reader) (int, string) {
		req, err := http.NewRequest(method, base+path, body)
		require.NoError(t, err)
		req.Header.Set("anthropic-beta", "managed-agents-2026-04-01")
		req.Header.Set("x-api-key", "s0d_hostile")
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	cases := []struct {
		name, method, path, ctype string
		body                      func() io.Reader
		status                    int
		mention                   string
	}{
		{"huge body", "POST", "/v1/deployments", "application/json", func() io.Reader { return strings.NewReader(`{"name":"` + strings.Repeat("a", 2<<20) + `"}`) }, 413, "request_too_large"},
		{"huge body without length", "POST", "/v1/deployments", "application/json", func() io.Reader {
			return io.MultiReader(strings.NewReader(`{"name":"`), strings.NewReader(strings.Repeat("a", 2<<20)))
		}, 413, "request_too_large"},
		{"deep nesting", "POST", "/v1/deployments", "application/json", func() io.Reader { return strings.NewReader(strings.Repeat("[", 200000) + strings.Repeat("]", 200000)) }, 400, "invalid_request_error"},
		{"deep nesting in a field", "POST", "/v1/deployments", "application/json", func() io.Reader {
			return strings.NewReader(`{"metadata":` + strings.Repeat(`{"a":`, 20000) + `1` + strings.Repeat("}", 20000) + "}")
		}, 400, "invalid_request_error"},
		{"invalid utf-8", "POST", "/v1/deployments", "application/json", func() io.Reader { return strings.NewReader("{\"name\":\"\xc3\x28\"}") }, 400, "UTF-8"},
		{"wrong content type", "POST", "/v1/deployments", "text/xml", func() io.Reader { return strings.NewReader("<a/>") }, 400, "Content-Type"},
		{"multipart", "POST", "/v1/deployments", "multipart/form-data; boundary=x", func() io.Reader { return strings.NewReader("--x--") }, 400, "Content-Type"},
		{"path traversal in id", "GET", "/v1/deployments/..%2F..%2Fetc%2Fpasswd", "", nil, 404, "not_found_error"},
		{"dot segments", "GET", "/v1/deployments/../../admin/backup", "", nil, 404, ""},
		{"nul in id", "GET", "/v1/deployments/depl_%00x", "", nil, 404, "not_found_error"},
		{"overlong query", "GET", "/v1/deployments?agent_id=" + strings.Repeat("x", 20<<10), "", nil, 400, "query string"},
		{"query beyond header limit", "GET", "/v1/deployments?agent_id=" + strings.Repeat("x", 200<<10), "", nil, 431, ""},
		{"garbage cursor", "GET", "/v1/deployments?page=" + strings.Repeat("%ff", 300), "", nil, 400, "page"},
		{"negative limit", "GET", "/v1/deployment_runs?limit=-1", "", nil, 400, "limit"},
		{"huge limit", "GET", "/v1/deployment_runs?limit=99999999999999999999", "", nil, 400, "limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != nil {
				body = tc.body()
			}
			status, text := send(tc.method, tc.path, tc.ctype, body)
			assert.Equal(t, tc.status, status, "%.300s", text)
			assert.Contains(t, text, tc.mention)
		})
	}

	// Slowloris: a client that never finishes its headers is cut off.
	conn, err := net.Dial("tcp", r.d.TCPAddr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = bufio.NewReader(conn).ReadString('\n')
	// The server answers 408 or just closes; either way the read ends well
	// before our 10 s deadline.
	if err == nil {
		t.Log("server answered the slow client (408) and closed")
	} else {
		assert.NotContains(t, err.Error(), "timeout", "the server must close the slow connection itself")
	}

	// And the daemon still serves.
	status, _ := send("GET", "/v1/deployments", "", nil)
	assert.Equal(t, 200, status)
}
