package daemon_test

import (
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/internal/fakeupstream"
)

// The daemon with backend: upstream against the strict fake Managed Agents
// API on loopback, driven by the official SDK over the daemon's socket.
func TestUpstreamBackendEndToEnd(t *testing.T) {
	t.Parallel()
	fake := fakeupstream.New(t)
	fake.AddAgent("agent_a", 4)
	fake.AddEnvironment("env_1")
	dir := t.TempDir()
	cfg := baseConfig(dir)
	cfg.Backend = "upstream"
	cfg.Upstream = daemon.UpstreamConfig{URL: fake.URL, APIKey: fake.APIKey(), RetryWindow: 1e9, MaxConcurrency: 4, RequestTimeout: 5e9}
	r := start(t, cfg, daemon.Options{})
	c := r.client()
	ctx := t.Context()

	d, err := c.Beta.Deployments.New(ctx, createParams("up"))
	require.NoError(t, err)
	assert.Equal(t, int64(4), d.Agent.Version, "a string agent resolves to the upstream's latest version")

	run, err := c.Beta.Deployments.Run(ctx, d.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	require.NotEmpty(t, run.SessionID, "%s", run.RawJSON())
	sess, ok := fake.Session(run.SessionID)
	require.True(t, ok)
	assert.Equal(t, d.ID, sess.Metadata["sandbox0d.deployment_id"])
	assert.Equal(t, run.ID, sess.Metadata["sandbox0d.deployment_run_id"])
	require.Len(t, sess.Resources, 1)
	assert.Equal(t, "ghp_persist_me", sess.Resources[0].AuthorizationToken, "the upstream receives the decrypted token")
	assert.Len(t, fake.Events(run.SessionID), 1, "initial events delivered")

	// A failing environment is recorded on a manual run, which never pauses.
	fake.RemoveEnvironment("env_1")
	failed, err := c.Beta.Deployments.Run(ctx, d.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	assert.Equal(t, "environment_not_found_error", failed.Error.Type)
	assert.Contains(t, failed.Error.Message, "404")
	got, err := c.Beta.Deployments.Get(ctx, d.ID, anthropic.BetaDeploymentGetParams{})
	require.NoError(t, err)
	assert.Equal(t, anthropic.BetaManagedAgentsDeploymentStatus("active"), got.Status)

	// Creating against an environment that does not exist is a 400 naming it.
	p := createParams("bad-env")
	p.EnvironmentID = "env_gone"
	_, err = c.Beta.Deployments.New(ctx, p)
	var apiErr *anthropic.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 400, apiErr.StatusCode)
	assert.Contains(t, apiErr.Error(), "env_gone")

	// Sessions are proxied: the SDK reads the session through the daemon,
	// and the daemon's upstream key never reaches the caller.
	var hdr http.Header
	s, err := c.Beta.Sessions.Get(ctx, run.SessionID, anthropic.BetaSessionGetParams{}, option.WithResponseInto(new(*http.Response)), option.WithMiddleware(func(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		resp, err := next(req)
		if resp != nil {
			hdr = resp.Header
		}
		return resp, err
	}))
	require.NoError(t, err)
	assert.Equal(t, run.SessionID, s.ID)
	assert.NotContains(t, s.RawJSON(), fake.APIKey())
	for k, vs := range hdr {
		for _, v := range vs {
			assert.NotContains(t, v, fake.APIKey(), k)
		}
	}
	r.stop(t)
	assert.NotContains(t, r.logs.String(), "ghp_persist_me", "tokens never reach the logs")
}

func TestUpstreamUnreachableOnCreateIs503(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now
	dir := t.TempDir()
	cfg := baseConfig(dir)
	cfg.Backend = "upstream"
	cfg.Upstream = daemon.UpstreamConfig{URL: "http://" + addr, APIKey: "k", RetryWindow: 1e9, MaxConcurrency: 2, RequestTimeout: 2e9}
	d, err := daemon.New(cfg, slog.New(slog.DiscardHandler), daemon.Options{})
	require.NoError(t, err, "an unreachable upstream does not stop the daemon from starting")
	rr := startExisting(t, d, cfg)
	c := rr.client()
	_, err = c.Beta.Deployments.New(t.Context(), createParams("x"))
	var apiErr *anthropic.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 503, apiErr.StatusCode)
	assert.True(t, strings.Contains(apiErr.Error(), "could not be reached"), apiErr.Error())
	list, err := c.Beta.Deployments.List(t.Context(), anthropic.BetaDeploymentListParams{})
	require.NoError(t, err)
	assert.Empty(t, list.Data, "nothing stored")
}
