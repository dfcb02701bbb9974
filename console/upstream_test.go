package console_test

import (
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/internal/fakeupstream"
)

// With the upstream backend the session page and Send go through the
// reverse proxy the API uses (the strict fake Managed Agents API checks
// every request it gets).
func TestSessionPageOnTheUpstreamBackend(t *testing.T) {
	fake := fakeupstream.New(t)
	fake.AddAgent("agent_a", 4)
	fake.AddEnvironment("env_1")
	cfg := rigConfig(t)
	cfg.Backend = "upstream"
	cfg.Local = daemon.LocalConfig{}
	cfg.Upstream = daemon.UpstreamConfig{URL: fake.URL, APIKey: fake.APIKey(), RetryWindow: time.Second, MaxConcurrency: 4, RequestTimeout: 5 * time.Second}
	r := startRig(t, cfg, daemon.Options{})
	c, ctx := r.client(), t.Context()
	d, err := c.Beta.Deployments.New(ctx, deploymentParams("upstream <one>", "agent_a", "", ""))
	require.NoError(t, err)
	run, err := c.Beta.Deployments.Run(ctx, d.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	require.NotEmpty(t, run.SessionID, "%s", run.RawJSON())

	resp, err := http.Get(r.sockURL + "/console/sessions/" + run.SessionID)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Contains(t, string(body), "Summarise yesterday&#39;s commits", "the initial event, read through the proxy")
	assert.NotContains(t, string(body), fake.APIKey())

	resp, err = noRedirects().PostForm(r.sockURL+"/console/sessions/"+run.SessionID+"/send", url.Values{"message": {"and today's?"}})
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Len(t, fake.Events(run.SessionID), 2, "the message reached the upstream")
	assert.Empty(t, fake.Violations(), "every proxied request met the upstream's contract")
}
