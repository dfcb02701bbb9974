package daemon_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
)

func idemKey(k string) option.RequestOption { return option.WithHeader("Idempotency-Key", k) }

// Issue 24 point 8, through the official Go SDK: a retried create or run
// with the same Idempotency-Key gets the first answer and creates nothing
// more, also after a restart; the same key with another body is a 422 the
// SDK must not retry.
func TestIdempotencyKeysWithTheGoSDK(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := baseConfig(dir)
	backend := sessionstest.New(map[string]int64{"agent_a": 1})
	first := start(t, cfg, daemon.Options{Backend: backend})
	ctx := t.Context()
	c := first.client()

	d1, err := c.Beta.Deployments.New(ctx, createParams("once"), idemKey("create-1"))
	require.NoError(t, err)
	d2, err := c.Beta.Deployments.New(ctx, createParams("once"), idemKey("create-1"))
	require.NoError(t, err)
	assert.Equal(t, d1.ID, d2.ID, "the retry got the first answer")
	assert.Equal(t, d1.RawJSON(), d2.RawJSON())
	page, err := c.Beta.Deployments.List(ctx, anthropic.BetaDeploymentListParams{})
	require.NoError(t, err)
	assert.Len(t, page.Data, 1, "one deployment for two requests with one key")

	run1, err := c.Beta.Deployments.Run(ctx, d1.ID, anthropic.BetaDeploymentRunParams{}, idemKey("run-1"))
	require.NoError(t, err)
	run2, err := c.Beta.Deployments.Run(ctx, d1.ID, anthropic.BetaDeploymentRunParams{}, idemKey("run-1"))
	require.NoError(t, err)
	assert.Equal(t, run1.ID, run2.ID)
	assert.Equal(t, run1.SessionID, run2.SessionID)
	assert.Len(t, backend.Requests(), 1, "one session for two run requests with one key")

	_, err = c.Beta.Deployments.New(ctx, createParams("another body"), idemKey("create-1"))
	apiErr := requireAPIError(t, err, http.StatusUnprocessableEntity, "create-1", "was first used at", "with another request body")
	assert.Equal(t, "false", apiErr.Response.Header.Get("x-should-retry"))
	first.stop(t)
	// The stored answers are the wire JSON, which never holds the resource's
	// token: the data file has no copy of it in the clear.
	raw, err := os.ReadFile(filepath.Join(cfg.DataDir, "sandbox0d.db"))
	require.NoError(t, err)
	assert.True(t, bytes.Contains(raw, []byte("create-1")), "the key is stored")
	assert.False(t, bytes.Contains(raw, []byte("ghp_persist_me")), "token in the clear in the database file")

	// A restart keeps the keys: the same retry still creates nothing.
	second := start(t, cfg, daemon.Options{Backend: backend})
	c = second.client()
	run3, err := c.Beta.Deployments.Run(ctx, d1.ID, anthropic.BetaDeploymentRunParams{}, idemKey("run-1"))
	require.NoError(t, err)
	assert.Equal(t, run1.ID, run3.ID)
	assert.Len(t, backend.Requests(), 1)
	// Another key runs again.
	run4, err := c.Beta.Deployments.Run(ctx, d1.ID, anthropic.BetaDeploymentRunParams{}, idemKey("run-2"))
	require.NoError(t, err)
	assert.NotEqual(t, run1.ID, run4.ID)
	assert.Len(t, backend.Requests(), 2)
}

// Keys are scoped per API key: two callers using the same key string over
// TCP do not see each other's answers.
func TestIdempotencyKeysAreScopedPerAPIKey(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(t.TempDir())
	cfg.Listen = "127.0.0.1:0"
	cfg.Auth.APIKeys = []string{"s0d_caller_one", "s0d_caller_two"}
	r := start(t, cfg, daemon.Options{Backend: sessionstest.New(map[string]int64{"agent_a": 1})})
	ctx := t.Context()
	client := func(key string) anthropic.Client {
		return anthropic.NewClient(option.WithBaseURL("http://"+r.d.TCPAddr().String()), option.WithAPIKey(key), option.WithMaxRetries(0))
	}
	one, two := client("s0d_caller_one"), client("s0d_caller_two")
	a, err := one.Beta.Deployments.New(ctx, createParams("scoped"), idemKey("shared"))
	require.NoError(t, err)
	b, err := two.Beta.Deployments.New(ctx, createParams("scoped"), idemKey("shared"))
	require.NoError(t, err)
	assert.NotEqual(t, a.ID, b.ID, "another caller's key is another key")
	again, err := one.Beta.Deployments.New(ctx, createParams("scoped"), idemKey("shared"))
	require.NoError(t, err)
	assert.Equal(t, a.ID, again.ID)

	// A caller without a key learns nothing of its body: the key is checked
	// before the body is read.
	req, err := http.NewRequest(http.MethodPost, "http://"+r.d.TCPAddr().String()+"/v1/deployments", bytes.NewBufferString(dupDeployment))
	require.NoError(t, err)
	req.Header.Set("anthropic-beta", "managed-agents-2026-04-01")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Equal(t, "false", res.Header.Get("x-should-retry"))
}

// rawPost sends body as is (the SDKs cannot send a duplicate key).
func rawPost(t *testing.T, r *running, path, body string, headers ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://sandbox0d"+path, bytes.NewBufferString(body))
	require.NoError(t, err)
	req.Header.Set("anthropic-beta", "managed-agents-2026-04-01")
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := socketClient(r.socket).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(data), resp.Header
}

const dupDeployment = `{"name":"dup","agent":"agent_a","environment_id":"env_1",
 "initial_events":[{"type":"user.message","content":[{"type":"text","text":"hi"}]}],
 "metadata":{"team":"a","team":"b"}}`

// Issue 24 point 9: a repeated key is a 400 naming its path on every route
// sandbox0d serves itself (deployments, the local backend's sessions and
// events, admin), where it used to be accepted with the last value winning.
func TestDuplicateJSONKeysAreRefusedOnEveryOwnRoute(t *testing.T) {
	t.Parallel()
	cfg := localConfig(t, "none")
	cfg.Local.Agents = []daemon.LocalAgent{{ID: "agent_a", Version: 1, Command: []string{"/bin/sh", "-c", "echo ok"}}}
	cfg.Local.Environments = []daemon.LocalEnvironment{{ID: "env_1", Timeout: time.Minute}}
	r := start(t, cfg, daemon.Options{})

	status, body, h := rawPost(t, r, "/v1/deployments", dupDeployment)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "metadata.team: duplicate key")
	assert.Equal(t, "false", h.Get("x-should-retry"))

	status, body, _ = rawPost(t, r, "/v1/sessions", `{"agent":"agent_a","environment_id":"env_1","environment_id":"env_2"}`)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "environment_id: duplicate key")

	id := newLocalSession(t, r, "agent_a", "env_1")
	status, body, _ = rawPost(t, r, "/v1/sessions/"+id+"/events",
		`{"events":[{"type":"user.message","content":[{"type":"text","text":"a","text":"b"}]}]}`)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "events[0].content[0].text: duplicate key")

	status, body, _ = rawPost(t, r, "/v1/sessions/"+id, `{"metadata":{"k":"1","k":"2"}}`)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "metadata.k: duplicate key")

	status, body, _ = rawPost(t, r, "/admin/apikeys", `{"name":"a","name":"b"}`)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "name: duplicate key")

	// The same bodies without the repetition pass.
	status, body, _ = rawPost(t, r, "/v1/sessions/"+id, `{"metadata":{"k":"1","K":"2"}}`)
	assert.Equal(t, http.StatusOK, status, body)
}

// The local backend's creating POSTs honour Idempotency-Key too: one
// session and one user.message for two requests with one key each.
func TestIdempotencyKeysOnLocalSessionRoutes(t *testing.T) {
	t.Parallel()
	cfg := localConfig(t, "none")
	cfg.Local.Agents = []daemon.LocalAgent{{ID: "agent_a", Version: 1, Command: []string{"/bin/sh", "-c", "echo ok"}}}
	cfg.Local.Environments = []daemon.LocalEnvironment{{ID: "env_1", Timeout: time.Minute}}
	r := start(t, cfg, daemon.Options{})
	ctx := t.Context()
	c := r.client()

	params := anthropic.BetaSessionNewParams{Agent: anthropic.BetaSessionNewParamsAgentUnion{OfString: anthropic.String("agent_a")}, EnvironmentID: "env_1"}
	s1, err := c.Beta.Sessions.New(ctx, params, idemKey("session-1"))
	require.NoError(t, err)
	s2, err := c.Beta.Sessions.New(ctx, params, idemKey("session-1"))
	require.NoError(t, err)
	assert.Equal(t, s1.ID, s2.ID)
	list, err := c.Beta.Sessions.List(ctx, anthropic.BetaSessionListParams{})
	require.NoError(t, err)
	assert.Len(t, list.Data, 1)

	send := anthropic.BetaSessionEventSendParams{Events: []anthropic.BetaManagedAgentsEventParamsUnion{{
		OfUserMessage: &anthropic.BetaManagedAgentsUserMessageEventParams{Content: []anthropic.BetaManagedAgentsUserMessageEventParamsContentUnion{
			{OfText: &anthropic.BetaManagedAgentsTextBlockParam{Text: "once"}}}}}}}
	e1, err := c.Beta.Sessions.Events.Send(ctx, s1.ID, send, idemKey("send-1"))
	require.NoError(t, err)
	e2, err := c.Beta.Sessions.Events.Send(ctx, s1.ID, send, idemKey("send-1"))
	require.NoError(t, err)
	assert.Equal(t, e1.RawJSON(), e2.RawJSON())
	awaitEvent(t, r, s1.ID, isType("session.status_idle"))
	events, err := c.Beta.Sessions.Events.List(ctx, s1.ID, anthropic.BetaSessionEventListParams{})
	require.NoError(t, err)
	users := 0
	for _, ev := range events.Data {
		if ev.Type == "user.message" {
			users++
		}
	}
	assert.Equal(t, 1, users, "one user.message for two sends with one key")
}
