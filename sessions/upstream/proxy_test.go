package upstream_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/internal/fakeupstream"
	"github.com/sandbox0/sandbox0d/internal/wire"
	"github.com/sandbox0/sandbox0d/sessions/upstream"
)

const clientKey = "sk-client-key-for-the-daemon"

// daemon serves the backend's SessionHandler the way the API layer mounts
// it: behind a middleware that sets the daemon's request id.
func daemon(t *testing.T, b *upstream.Backend) *httptest.Server {
	h := b.SessionHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(wire.RequestIDHeader, "req_daemon_1")
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func sdkAt(srv *httptest.Server) anthropic.Client {
	return anthropic.NewClient(
		option.WithoutEnvironmentDefaults(),
		option.WithBaseURL(srv.URL),
		option.WithAPIKey(clientKey),
		option.WithMaxRetries(0),
	)
}

func TestProxyServesTheSessionCallsOfTheOfficialSDK(t *testing.T) {
	fake := newLoopback(t)
	b := newBackend(t, fake, false)
	id, err := b.CreateSession(t.Context(), runRequest("drun_1"))
	require.NoError(t, err)
	srv := daemon(t, b)
	client := sdkAt(srv)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second) // guards against a buffering proxy hanging the test
	defer cancel()

	sess, err := client.Beta.Sessions.Get(ctx, id, anthropic.BetaSessionGetParams{})
	require.NoError(t, err)
	assert.Equal(t, id, sess.ID)
	assert.Equal(t, "drun_1", sess.Metadata[upstream.MetadataRunID])
	assert.NotContains(t, sess.RawJSON(), repoToken)

	events, err := client.Beta.Sessions.Events.List(ctx, id, anthropic.BetaSessionEventListParams{})
	require.NoError(t, err)
	require.Len(t, events.Data, 3)
	assert.Equal(t, []string{"user.message", "user.message", "system.message"},
		[]string{events.Data[0].Type, events.Data[1].Type, events.Data[2].Type})

	stream := client.Beta.Sessions.Events.StreamEvents(ctx, id, anthropic.BetaSessionEventStreamParams{})
	defer stream.Close()
	require.NoError(t, stream.Err())
	// Each event is emitted only after the previous one was read through the
	// proxy: a proxy that buffered would never deliver the first.
	for _, text := range []string{"thinking…", "half-way", "done"} {
		_, err := fake.EmitEvent(id, map[string]any{"type": "agent.message", "content": []any{map[string]any{"type": "text", "text": text}}})
		require.NoError(t, err)
		require.True(t, stream.Next(), "stream ended: %v", stream.Err())
		ev := stream.Current()
		assert.Equal(t, "agent.message", ev.Type)
		assert.Contains(t, ev.RawJSON(), text)
	}

	for _, r := range fake.Requests()[2:] { // after the backend's own create + events
		assert.Equal(t, fake.APIKey(), r.Header.Get("X-Api-Key"), "%s %s", r.Method, r.Path)
		assert.Empty(t, r.Header.Get("Authorization"), "the client's credential is not forwarded")
		assert.NotContains(t, strings.Join(r.Header.Values("X-Api-Key"), ","), clientKey)
		assert.Equal(t, "true", r.Query.Get("beta"))
		assert.Equal(t, "managed-agents-2026-04-01", r.Header.Get("anthropic-beta"), "the client's beta header is kept")
		assert.Equal(t, "2026-10-21", r.Header.Get("anthropic-version"), "the client's version header is kept")
	}
}

// Issue 12 point 4: the proxy forwards the client's own anthropic-beta (the
// Models API needs none, the Files API its own) and fills in only the
// version.
func TestProxyFillsInTheVersionKeepsTheClientsBetaAndTheUpstreamRequestID(t *testing.T) {
	fake := newLoopback(t)
	b := newBackend(t, fake, false)
	srv := daemon(t, b)

	resp, err := http.Get(srv.URL + "/v1/models")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, 200, resp.StatusCode, string(body))
	assert.Regexp(t, `^req_fake_`, resp.Header.Get("request-id"), "the upstream's id names the call")
	assert.Len(t, resp.Header.Values("request-id"), 1)

	r := fake.Requests()[0]
	assert.Empty(t, r.Header.Values("anthropic-beta"), "no beta is invented for the client")
	assert.Equal(t, "2023-06-01", r.Header.Get("anthropic-version"))
}

// An upstream that echoes what it was sent must not leak the daemon's key.
func TestProxyNeverLeaksTheDaemonKey(t *testing.T) {
	const daemonKey = "sk-daemon-secret-key-42"
	var sawClientKey bool
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawClientKey = strings.Contains(r.Header.Get("X-Api-Key")+r.Header.Get("Authorization"), clientKey)
		w.Header().Set("X-Echo-Key", r.Header.Get("X-Api-Key"))
		w.Header().Set("X-Api-Key", r.Header.Get("X-Api-Key"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"type":"error","error":{"type":"invalid_request_error","message":"key `+r.Header.Get("X-Api-Key")+` lacks scope"}}`)
	}))
	t.Cleanup(echo.Close)
	b, err := upstream.New(upstream.Config{URL: echo.URL, APIKey: daemonKey})
	require.NoError(t, err)
	srv := daemon(t, b)

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/v1/sessions/sesn_1", nil)
	req.Header.Set("X-Api-Key", clientKey)
	req.Header.Set("Authorization", "Bearer "+clientKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)

	assert.False(t, sawClientKey, "the client's key never reaches the upstream")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "the upstream's answer is passed through")
	for k, vs := range resp.Header {
		for _, v := range vs {
			assert.NotContains(t, v, daemonKey, "header %s", k)
		}
	}
	assert.NotContains(t, string(body), daemonKey)
	assert.Contains(t, string(body), "key [redacted] lacks scope")
	assert.Equal(t, "req_daemon_1", resp.Header.Get("request-id"), "an upstream without ids gets the daemon's")
}

func TestProxyErrorsUseTheEnvelope(t *testing.T) {
	b, err := upstream.New(upstream.Config{URL: closedURL(t), APIKey: "sk-daemon"})
	require.NoError(t, err)
	srv := daemon(t, b)

	resp, err := http.Get(srv.URL + "/v1/sessions")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
	assert.Contains(t, string(body), `"type":"error"`)
	assert.Contains(t, string(body), "the session backend could not be reached")
	assert.Equal(t, "req_daemon_1", resp.Header.Get("request-id"))
	assert.NotContains(t, string(body), "sk-daemon")

	resp, err = http.Get(srv.URL + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "only /v1/… is proxied")
}

func TestProxySendsTheClientsBetasAlong(t *testing.T) {
	fake := newLoopback(t)
	b := newBackend(t, fake, false)
	srv := daemon(t, b)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/v1/environments/env_1?beta=true", nil)
	req.Header.Set("anthropic-beta", "files-api-2025-04-14,managed-agents-2026-04-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	r := fake.RequestsTo(fakeupstream.RouteGetEnvironment)[0]
	assert.Equal(t, "files-api-2025-04-14,managed-agents-2026-04-01", r.Header.Get("anthropic-beta"))
	assert.Equal(t, []string{"true"}, r.Query["beta"], "beta=true is not doubled")
}

// An upstream 401 is about the daemon's key, not the client's: the client
// gets a 502 that says so, with the upstream's request id in the message.
func TestProxyTurnsAnUpstream401IntoA502(t *testing.T) {
	fake := newLoopback(t)
	fake.InjectFault(fakeupstream.RouteGetSession, 1, fakeupstream.Fault{Status: 401, Message: "invalid x-api-key"})
	b := newBackend(t, fake, false)
	srv := daemon(t, b)

	req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/sessions/sesn_1", nil)
	require.NoError(t, err)
	req.Header.Set("anthropic-beta", "managed-agents-2026-04-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
	assert.Contains(t, string(body), "the upstream refused the daemon's credentials (check upstream.api_key)")
	assert.Regexp(t, `GET /v1/sessions/sesn_1 answered 401 Unauthorized \(request-id req_fake_`, string(body))
	assert.Equal(t, "req_daemon_1", resp.Header.Get("request-id"))
}
