package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/httpapi"
)

func TestBetaHeaderMatchesServer(t *testing.T) {
	assert.Equal(t, httpapi.BetaHeader, managedAgentsBeta)
}

// headerRecorder answers every request with an empty list and records the
// headers it saw.
type headerRecorder struct {
	mu      sync.Mutex
	headers []http.Header
}

func (h *headerRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.headers = append(h.headers, r.Header.Clone())
	h.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"data":[],"next_page":null}`))
}

func (h *headerRecorder) last(t *testing.T) http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	require.NotEmpty(t, h.headers, "no request reached the server")
	return h.headers[len(h.headers)-1]
}

func TestRequestsOverTCPCarryHeadersAndKey(t *testing.T) {
	rec := &headerRecorder{}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	cases := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"addr flag", map[string]string{envAPIKey: "s0d_secret"}, []string{"--addr", srv.URL + "/", "runs", "list"}},
		{"addr env", map[string]string{envAPIKey: "s0d_secret", envAddr: srv.URL}, []string{"deployments", "list"}},
		// The flag wins over the environment.
		{"flag beats env", map[string]string{envAPIKey: "s0d_secret", envAddr: "http://127.0.0.1:1"}, []string{"--addr", srv.URL, "deployments", "list"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(t, cronNow, tc.env, nil, tc.args...)
			require.NoError(t, res.err)
			h := rec.last(t)
			assert.Equal(t, managedAgentsBeta, h.Get("anthropic-beta"))
			assert.Equal(t, "2023-06-01", h.Get("anthropic-version"))
			assert.Equal(t, "application/json", h.Get("Content-Type"))
			assert.Equal(t, "s0d_secret", h.Get("x-api-key"))
		})
	}
}

func TestSocketRequestsSendNoKey(t *testing.T) {
	rec := &headerRecorder{}
	socket := serveUnix(t, rec)
	// The key is for TCP; the socket is trusted and never sees it.
	res := runCLI(t, cronNow, map[string]string{envAPIKey: "s0d_secret"}, nil, "--socket", socket, "deployments", "list")
	require.NoError(t, res.err)
	assert.Empty(t, rec.last(t).Get("x-api-key"))
	assert.Equal(t, "No deployments.\n", res.stdout)

	// SANDBOX0D_SOCKET is honoured when --socket is not given.
	res = runCLI(t, cronNow, map[string]string{envSocket: socket}, nil, "runs", "list")
	require.NoError(t, res.err)
	assert.Equal(t, "No runs.\n", res.stdout)
}

func TestEndpointErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "absent.sock")
	cases := []struct {
		name    string
		args    []string
		message string
	}{
		{"no daemon", []string{"--socket", missing, "deployments", "list"}, "cannot reach sandbox0d at socket " + missing},
		{"addr without scheme", []string{"--addr", "127.0.0.1:8080", "deployments", "list"}, "--addr: \"127.0.0.1:8080\" must be an http:// or https:// URL"},
		{"addr with query", []string{"--addr", "http://h/?x=1", "deployments", "list"}, "must not carry a query"},
		{"empty socket", []string{"--socket", "", "deployments", "list"}, "--socket: no socket path given"},
		{"negative limit", []string{"--socket", missing, "runs", "list", "--limit", "-1"}, "--limit: must be 0"},
		{"empty id", []string{"--socket", missing, "deployments", "get", " "}, "deployment id: must not be empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(t, cronNow, nil, nil, tc.args...)
			require.Error(t, res.err)
			assert.Contains(t, res.err.Error(), tc.message)
		})
	}
}

func TestNonEnvelopeErrorIsQuoted(t *testing.T) {
	socket := serveUnix(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>bad gateway\n</html>", http.StatusBadGateway)
	}))
	res := runCLI(t, cronNow, nil, nil, "--socket", socket, "deployments", "get", "depl_x")
	require.Error(t, res.err)
	assert.Equal(t, "the daemon answered 502 Bad Gateway: <html>bad gateway </html> (HTTP 502)", res.err.Error())
}

// pagedServer serves `total` fake runs, `perPage` at a time whatever limit
// is asked, and records the queries it got.
type pagedServer struct {
	mu      sync.Mutex
	total   int
	perPage int
	queries []string
	// emptyCursor answers an empty page that still has a cursor.
	emptyCursor bool
}

func (p *pagedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.queries = append(p.queries, r.URL.RawQuery)
	p.mu.Unlock()
	start := 0
	if page := r.URL.Query().Get("page"); page != "" {
		start, _ = strconv.Atoi(page)
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	n := min(p.perPage, limit, p.total-start)
	out := listPage{Data: []json.RawMessage{}}
	if !p.emptyCursor {
		for i := start; i < start+n; i++ {
			out.Data = append(out.Data, json.RawMessage(fmt.Sprintf(
				`{"type":"deployment_run","id":"drun_%03d","deployment_id":"depl_a","agent":{"type":"agent","id":"agent_a","version":1},`+
					`"trigger_context":{"type":"manual"},"session_id":"sesn_%03d","error":null,"created_at":"2026-11-30T09:00:00Z"}`, i, i)))
		}
	}
	if p.emptyCursor || start+n < p.total {
		next := strconv.Itoa(start + n)
		out.NextPage = &next
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func TestListFollowsPages(t *testing.T) {
	cases := []struct {
		name      string
		limit     string
		wantRows  int
		wantQuery []string
		wantNext  bool
	}{
		{"all pages", "0", 7, []string{
			"deployment_id=depl_a&has_error=true&limit=1000",
			"deployment_id=depl_a&has_error=true&limit=1000&page=3",
			"deployment_id=depl_a&has_error=true&limit=1000&page=6"}, false},
		{"limit inside a page", "2", 2, []string{"deployment_id=depl_a&has_error=true&limit=2"}, true},
		{"limit across pages", "5", 5, []string{
			"deployment_id=depl_a&has_error=true&limit=5",
			"deployment_id=depl_a&has_error=true&limit=2&page=3"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := &pagedServer{total: 7, perPage: 3}
			socket := serveUnix(t, srv)
			res := runCLI(t, cronNow, nil, nil, "--socket", socket, "--json", "runs", "list",
				"--deployment", "depl_a", "--errors", "--limit", tc.limit)
			require.NoError(t, res.err)
			var out listing
			require.NoError(t, json.Unmarshal([]byte(res.stdout), &out))
			assert.Len(t, out.Data, tc.wantRows)
			assert.Equal(t, tc.wantNext, out.NextPage != nil)
			assert.Equal(t, tc.wantQuery, srv.queries)
		})
	}

	srv := &pagedServer{total: 7, perPage: 3, emptyCursor: true}
	socket := serveUnix(t, srv)
	res := runCLI(t, cronNow, nil, nil, "--socket", socket, "runs", "list", "--limit", "0")
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), "empty page with a next_page cursor")
}

func TestServeKeepsItsOwnSocketFlag(t *testing.T) {
	root := NewRoot()
	serve, _, err := root.Find([]string{"serve"})
	require.NoError(t, err)
	require.NoError(t, serve.ParseFlags([]string{"--socket", "/tmp/serve.sock"}))
	flag := serve.Flags().Lookup("socket")
	require.NotNil(t, flag)
	assert.Equal(t, "/tmp/serve.sock", flag.Value.String())
	assert.Contains(t, flag.Usage, "serve on", "serve's own flag, not the client's")

	deploymentsCmd, _, err := root.Find([]string{"deployments", "list"})
	require.NoError(t, err)
	assert.NotNil(t, deploymentsCmd.InheritedFlags().Lookup("socket"))
	assert.NotNil(t, deploymentsCmd.InheritedFlags().Lookup("json"))
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	elsewhere := &headerRecorder{}
	target := httptest.NewServer(elsewhere)
	t.Cleanup(target.Close)
	redirector := httptest.NewServer(http.RedirectHandler(target.URL+"/v1/deployments", http.StatusFound))
	t.Cleanup(redirector.Close)

	res := runCLI(t, cronNow, map[string]string{envAPIKey: "s0d_secret"}, nil, "--addr", redirector.URL, "deployments", "list")
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), "the daemon answered 302 Found")
	assert.Empty(t, elsewhere.headers, "the key was not sent to the redirect target")
}
