package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/internal/wire"
)

// adminRequest is what the fake daemon saw.
type adminRequest struct {
	method, path, body, contentType string
}

// adminServer answers one admin route with a fixed JSON body and records
// every request it gets.
func adminServer(t *testing.T, method, path string, status int, answer string) (string, *[]adminRequest) {
	t.Helper()
	var seen []adminRequest
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		seen = append(seen, adminRequest{r.Method, r.URL.Path, string(body), r.Header.Get("Content-Type")})
		if r.Method != method || r.URL.Path != path {
			wire.WriteError(w, http.StatusNotFound, "no route for "+r.Method+" "+r.URL.Path)
			return
		}
		if status != http.StatusOK {
			wire.WriteError(w, status, answer)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, answer)
	})
	return serveUnix(t, mux), &seen
}

func TestAPIKeysCreateShowsKeyOnce(t *testing.T) {
	const key = "s0d_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
	socket, seen := adminServer(t, http.MethodPost, "/admin/apikeys", http.StatusOK,
		`{"id":"key_ci","name":"ci","key":"`+key+`","created_at":"2026-11-30T10:00:00Z"}`)
	res := runCLI(t, cronNow, nil, nil, "--socket", socket, "apikeys", "create", "--name", "ci")
	require.NoError(t, res.err)
	require.Len(t, *seen, 1)
	req := (*seen)[0]
	assert.Equal(t, http.MethodPost, req.method)
	assert.Equal(t, "/admin/apikeys", req.path)
	assert.JSONEq(t, `{"name":"ci"}`, req.body)
	assert.Equal(t, "application/json", req.contentType)

	assert.Equal(t, 1, strings.Count(res.stdout+res.stderr, key), "the key is printed exactly once:\n%s", res.stdout)
	assert.Contains(t, res.stdout, "Created API key key_ci (ci).")
	assert.Contains(t, res.stdout, "cannot be shown again")

	res = runCLI(t, cronNow, nil, nil, "--socket", socket, "apikeys", "create", "--name", "  ")
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), "--name: must not be empty")
	assert.Len(t, *seen, 1, "nothing sent for an empty name")
}

func TestAPIKeysCreateJSON(t *testing.T) {
	socket, _ := adminServer(t, http.MethodPost, "/admin/apikeys", http.StatusOK,
		`{"id":"key_ci","name":"ci","key":"s0d_abc","created_at":"2026-11-30T10:00:00Z"}`)
	res := runCLI(t, cronNow, nil, nil, "--socket", socket, "--json", "apikeys", "create", "--name", "ci")
	require.NoError(t, res.err)
	var k map[string]any
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &k))
	assert.Equal(t, "s0d_abc", k["key"])
}

func TestAPIKeysList(t *testing.T) {
	socket, seen := adminServer(t, http.MethodGet, "/admin/apikeys", http.StatusOK, `{"data":[
		{"id":"key_ci","name":"ci","created_at":"2026-11-20T10:00:00Z","last_used_at":"2026-11-30T09:58:00Z","revoked_at":null},
		{"id":"key_old","name":"laptop of someone who left the team long ago","created_at":"2026-01-01T00:00:00Z","last_used_at":null,"revoked_at":"2026-11-29T10:00:00Z"}]}`)
	now := mustTime(t, fleetNow)
	res := runCLI(t, func() time.Time { return now }, nil, nil, "--socket", socket, "apikeys", "list")
	require.NoError(t, res.err)
	assert.Equal(t, "GET", (*seen)[0].method)
	assert.Equal(t, ""+
		"ID       NAME                              CREATED      LAST USED  REVOKED\n"+
		"key_ci   ci                                10d ago      2m ago     -\n"+
		"key_old  laptop of someone who left the …  333d10h ago  never      1d ago\n", res.stdout)
}

func TestAPIKeysRevoke(t *testing.T) {
	socket, seen := adminServer(t, http.MethodPost, "/admin/apikeys/key_ci/revoke", http.StatusOK,
		`{"id":"key_ci","name":"ci","created_at":"2026-11-20T10:00:00Z","last_used_at":null,"revoked_at":"2026-11-30T10:00:00Z"}`)
	res := runCLI(t, cronNow, nil, nil, "--socket", socket, "apikeys", "revoke", "key_ci")
	require.NoError(t, res.err)
	assert.Equal(t, adminRequest{method: "POST", path: "/admin/apikeys/key_ci/revoke", contentType: "application/json"}, (*seen)[0])
	assert.Equal(t, "Revoked API key key_ci (ci) at 2026-11-30 10:00 UTC.\n", res.stdout)

	res = runCLI(t, cronNow, nil, nil, "--socket", socket, "apikeys", "revoke", "key_gone")
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), "no route for POST /admin/apikeys/key_gone/revoke (not_found_error, HTTP 404")
}

func TestKeysRotate(t *testing.T) {
	socket, seen := adminServer(t, http.MethodPost, "/admin/keys/rotate", http.StatusOK,
		`{"recipient":"age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3xnq8u","resealed":3}`)
	res := runCLI(t, cronNow, nil, nil, "--socket", socket, "keys", "rotate")
	require.NoError(t, res.err)
	require.Len(t, *seen, 1)
	assert.Equal(t, "POST", (*seen)[0].method)
	assert.Equal(t, "/admin/keys/rotate", (*seen)[0].path)
	assert.Empty(t, (*seen)[0].body)
	assert.Equal(t, "New recipient: age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3xnq8u\n"+
		"Re-sealed 3 secrets with the new key.\n", res.stdout)
}

func TestKeysRotateError(t *testing.T) {
	socket, _ := adminServer(t, http.MethodPost, "/admin/keys/rotate", http.StatusServiceUnavailable,
		"the store is busy; retry")
	res := runCLI(t, cronNow, nil, nil, "--socket", socket, "keys", "rotate")
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), "the store is busy; retry (overloaded_error, HTTP 503")
}
