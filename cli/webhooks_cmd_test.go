package cli

import (
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const webhookOverviewJSON = `{"outbox":3,"endpoints":[
	{"url":"https://hooks.example.com/sandbox0d","events":[],"signing_keys":2,"pending":12,"failed":1,"in_flight":4},
	{"url":"http://127.0.0.1:9000/hook","events":["deployment.paused","deployment_run.failed"],"signing_keys":1,"pending":0,"failed":0,"in_flight":0}]}`

const webhookDeliveriesJSON = `{"data":[
	{"event_id":"wevt_0f3a","event_type":"deployment_run.failed","endpoint":"https://hooks.example.com/sandbox0d","status":"pending","attempts":2,
	 "next_attempt_at":"2026-11-27T12:05:00Z","created_at":"2026-11-27T11:59:00Z","finished_at":null,
	 "attempt_log":[{"at":"2026-11-27T11:59:00Z","status_code":500,"error":"HTTP 500","duration_ms":12.5},
	                {"at":"2026-11-27T11:59:05Z","status_code":0,"error":"no response within 15s","duration_ms":15000}]},
	{"event_id":"wevt_9b21","event_type":"deployment.paused","endpoint":"http://127.0.0.1:9000/hook","status":"delivered","attempts":1,
	 "next_attempt_at":null,"created_at":"2026-11-27T11:00:00Z","finished_at":"2026-11-27T11:00:00Z",
	 "attempt_log":[{"at":"2026-11-27T11:00:00Z","status_code":204,"error":"","duration_ms":3}]}]}`

func TestWebhooksListGolden(t *testing.T) {
	socket, seen := adminServer(t, http.MethodGet, "/admin/webhooks", http.StatusOK, webhookOverviewJSON)
	res := runCLI(t, cronNow, nil, nil, "--socket", socket, "webhooks", "list")
	require.NoError(t, res.err)
	require.Len(t, *seen, 1)
	assertGolden(t, "list", res.stdout)

	empty, _ := adminServer(t, http.MethodGet, "/admin/webhooks", http.StatusOK, `{"outbox":0,"endpoints":[]}`)
	res = runCLI(t, cronNow, nil, nil, "--socket", empty, "webhooks", "list")
	require.NoError(t, res.err)
	assert.Contains(t, res.stdout, "No webhook endpoints configured")
}

func TestWebhooksDeliveriesGolden(t *testing.T) {
	var queries []url.Values
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/webhooks/deliveries", func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.Query())
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, webhookDeliveriesJSON)
	})
	socket := serveUnix(t, mux)

	res := runCLI(t, cronNow, nil, nil, "--socket", socket, "webhooks", "deliveries")
	require.NoError(t, res.err)
	assertGolden(t, "all", res.stdout)
	res = runCLI(t, cronNow, nil, nil, "--socket", socket, "webhooks", "deliveries", "--attempts",
		"--failed", "--endpoint", "https://hooks.example.com/sandbox0d", "--limit", "10")
	require.NoError(t, res.err)
	assertGolden(t, "attempts", res.stdout)
	require.Len(t, queries, 2)
	assert.Equal(t, url.Values{"limit": {"50"}}, queries[0])
	assert.Equal(t, url.Values{"limit": {"10"}, "failed": {"true"}, "endpoint": {"https://hooks.example.com/sandbox0d"}}, queries[1])

	res = runCLI(t, cronNow, nil, nil, "--socket", socket, "webhooks", "deliveries", "--limit", "0")
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), "--limit")
	assert.Len(t, queries, 2, "nothing sent for a bad limit")
}

func TestWebhooksRetry(t *testing.T) {
	socket, seen := adminServer(t, http.MethodPost, "/admin/webhooks/events/wevt_0f3a/retry", http.StatusOK, `{"event_id":"wevt_0f3a","queued":2}`)
	res := runCLI(t, cronNow, nil, nil, "--socket", socket, "webhooks", "retry", "wevt_0f3a")
	require.NoError(t, res.err)
	assert.Equal(t, "Queued event wevt_0f3a for 2 endpoint(s); see `sandbox0d webhooks deliveries`.\n", res.stdout)
	require.Len(t, *seen, 1)
	assert.JSONEq(t, `{"endpoint":""}`, (*seen)[0].body)

	res = runCLI(t, cronNow, nil, nil, "--socket", socket, "webhooks", "retry", "wevt_0f3a", "--endpoint", "https://x.example/")
	require.NoError(t, res.err)
	assert.JSONEq(t, `{"endpoint":"https://x.example/"}`, (*seen)[1].body)

	missing, _ := adminServer(t, http.MethodPost, "/admin/webhooks/events/wevt_gone/retry", http.StatusNotFound, `webhook event "wevt_gone" not found`)
	res = runCLI(t, cronNow, nil, nil, "--socket", missing, "webhooks", "retry", "wevt_gone")
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), `webhook event "wevt_gone" not found`)
}

func TestWebhooksTestPing(t *testing.T) {
	socket, seen := adminServer(t, http.MethodPost, "/admin/webhooks/test", http.StatusOK,
		`{"event_id":"wevt_ping","delivered":true,"status_code":204,"error":"","duration_ms":4.2}`)
	res := runCLI(t, cronNow, nil, nil, "--socket", socket, "webhooks", "test", "https://hooks.example.com/sandbox0d")
	require.NoError(t, res.err)
	assert.Equal(t, "Ping wevt_ping delivered to https://hooks.example.com/sandbox0d: HTTP 204 in 4ms.\n", res.stdout)
	assert.JSONEq(t, `{"url":"https://hooks.example.com/sandbox0d"}`, (*seen)[0].body)

	refused, _ := adminServer(t, http.MethodPost, "/admin/webhooks/test", http.StatusOK,
		`{"event_id":"wevt_ping","delivered":false,"status_code":401,"error":"HTTP 401","duration_ms":2}`)
	res = runCLI(t, cronNow, nil, nil, "--socket", refused, "webhooks", "test", "https://hooks.example.com/sandbox0d")
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), "was not accepted: HTTP 401")
}
