package daemon_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/anthropics/anthropic-sdk-go/v2/packages/param"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/internal/fakeupstream"
)

// upstreamDaemon is the daemon with backend: upstream against a seeded fake.
func upstreamDaemon(t *testing.T) (*fakeupstream.Server, anthropic.Client) {
	t.Helper()
	fake := fakeupstream.New(t)
	fake.AddAgent("agent_a", 4)
	fake.AddEnvironment("env_1")
	fake.AddFile("file_1")
	fake.AddMemoryStore("memstore_1")
	cfg := baseConfig(t.TempDir())
	cfg.Backend = "upstream"
	cfg.Upstream = daemon.UpstreamConfig{URL: fake.URL, APIKey: fake.APIKey(), RetryWindow: 1e9, MaxConcurrency: 4, RequestTimeout: 5e9}
	return fake, start(t, cfg, daemon.Options{}).client()
}

// Issue 12 points 1, 2, 3 and 7 through the official SDK: a deployment with
// 16 metadata pairs, a file and a memory store runs; the budget reaches the
// session; memory store ids are checked at create.
func TestUpstreamRunsWhatTheSDKAllows(t *testing.T) {
	t.Parallel()
	fake, c := upstreamDaemon(t)
	ctx := t.Context()
	p := createParams("full")
	p.Metadata = map[string]string{}
	for i := range 16 {
		p.Metadata[fmt.Sprintf("key_%02d", i)] = "v"
	}
	p.Budget = anthropic.BetaManagedAgentsBudgetLimitParam{MaxListCost: anthropic.BetaMonetaryAmountParam{Amount: "2500", Currency: "USD"}}
	p.Resources = append(p.Resources,
		anthropic.BetaDeploymentNewParamsResourceUnion{OfFile: &anthropic.BetaManagedAgentsFileResourceParams{FileID: "file_1"}},
		anthropic.BetaDeploymentNewParamsResourceUnion{OfMemoryStore: &anthropic.BetaManagedAgentsMemoryStoreResourceParam{MemoryStoreID: "memstore_1"}})
	d, err := c.Beta.Deployments.New(ctx, p)
	require.NoError(t, err, "the file lookup carries the Files API beta")
	require.NotEmpty(t, fake.RequestsTo(fakeupstream.RouteGetMemoryStore), "memory stores are looked up at create")

	run, err := c.Beta.Deployments.Run(ctx, d.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	require.NotEmpty(t, run.SessionID, "%s", run.RawJSON())
	sess, ok := fake.Session(run.SessionID)
	require.True(t, ok)
	for k, v := range p.Metadata {
		assert.Equal(t, v, sess.Metadata[k])
	}
	assert.JSONEq(t, `{"type":"limit","max_list_cost":{"amount":"2500","currency":"USD"}}`, string(sess.Budget))

	// Unknown and archived memory stores are refused, naming the resource.
	fake.ArchiveMemoryStore("memstore_1")
	_, err = c.Beta.Deployments.New(ctx, p)
	requireAPIError(t, err, 400, "resources[2].memory_store_id", "archived")
	p.Resources[2].OfMemoryStore.MemoryStoreID = "memstore_nope"
	_, err = c.Beta.Deployments.New(ctx, p)
	requireAPIError(t, err, 400, "resources[2].memory_store_id", "memstore_nope")
}

// Issue 12 point 7: a version-pinned agent that was archived is refused,
// though its version snapshot does not say so.
func TestUpstreamRefusesAnArchivedPinnedAgent(t *testing.T) {
	t.Parallel()
	fake, c := upstreamDaemon(t)
	fake.ArchiveAgent("agent_a")
	p := createParams("pinned")
	p.Agent = anthropic.BetaDeploymentNewParamsAgentUnion{OfBetaManagedAgentsAgent: &anthropic.BetaManagedAgentsAgentParams{ID: "agent_a", Version: param.NewOpt(int64(2))}}
	_, err := c.Beta.Deployments.New(t.Context(), p)
	requireAPIError(t, err, 400, "agent", "archived")
}

// Issue 12 point 6: a lookup the upstream answered is reported as what it
// was, once, and a permanent problem is not a retryable overloaded_error.
func TestUpstreamLookupErrorsSayWhatHappened(t *testing.T) {
	t.Parallel()
	fake, c := upstreamDaemon(t)
	ctx := t.Context()

	fake.InjectFault(fakeupstream.RouteGetAgent, 1, fakeupstream.Fault{Status: 401, Message: "invalid x-api-key"})
	_, err := c.Beta.Deployments.New(ctx, createParams("key"))
	apiErr := requireAPIError(t, err, 502, "the upstream refused the daemon's credentials (check upstream.api_key)")
	assert.Equal(t, "false", apiErr.Response.Header.Get("x-should-retry"))
	assert.NotContains(t, apiErr.RawJSON(), "overloaded_error")

	fake.InjectFault(fakeupstream.RouteGetEnvironment, 1, fakeupstream.Fault{Status: 403, Message: "workspace forbidden"})
	_, err = c.Beta.Deployments.New(ctx, createParams("perm"))
	requireAPIError(t, err, 502, "refused the daemon's credentials", "workspace forbidden")

	fake.InjectFault(fakeupstream.RouteGetEnvironment, 1, fakeupstream.Fault{Status: 400, Message: "malformed environment id"})
	_, err = c.Beta.Deployments.New(ctx, createParams("bad"))
	requireAPIError(t, err, 400, "environment_id: the upstream rejected", "env_1", "malformed environment id")

	fake.InjectFault(fakeupstream.RouteGetEnvironment, 1, fakeupstream.Fault{Status: 503})
	_, err = c.Beta.Deployments.New(ctx, createParams("down"))
	apiErr = requireAPIError(t, err, 503, "the session backend could not be reached")
	assert.Equal(t, 1, strings.Count(apiErr.Error(), "could not be reached"), apiErr.Error())
}

// Issue 12 point 6: with backend: none an unpinned agent is the request's
// problem, and the message says to pin a version.
func TestBackendNoneAsksToPinTheAgent(t *testing.T) {
	t.Parallel()
	c := start(t, baseConfig(t.TempDir()), daemon.Options{}).client()
	p := createParams("none")
	_, err := c.Beta.Deployments.New(t.Context(), p)
	requireAPIError(t, err, 400, "agent", "pin a version")
	p.Agent = anthropic.BetaDeploymentNewParamsAgentUnion{OfBetaManagedAgentsAgent: &anthropic.BetaManagedAgentsAgentParams{ID: "agent_a", Version: param.NewOpt(int64(1))}}
	_, err = c.Beta.Deployments.New(t.Context(), p)
	require.NoError(t, err)
}

// Issue 12 point 8: the session is created, its initial events are not
// delivered: the run has an error naming the session and no session_id,
// and the half-started session is archived upstream.
func TestRunWithUndeliveredEventsHasOnlyAnError(t *testing.T) {
	t.Parallel()
	fake, c := upstreamDaemon(t)
	ctx := t.Context()
	d, err := c.Beta.Deployments.New(ctx, createParams("events"))
	require.NoError(t, err)
	fake.InjectFault(fakeupstream.RouteSendEvents, 1, fakeupstream.Fault{Status: 400, Message: "events[0]: unsupported block"})
	run, err := c.Beta.Deployments.Run(ctx, d.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	assert.Contains(t, run.RawJSON(), `"session_id":null`)
	require.NotEmpty(t, run.Error.Type)
	all := fake.Sessions()
	require.Len(t, all, 1)
	assert.Contains(t, run.Error.Message, all[0].ID)
	assert.NotNil(t, all[0].ArchivedAt, "the half-started session is archived")
	got, err := c.Beta.DeploymentRuns.Get(ctx, run.ID, anthropic.BetaDeploymentRunGetParams{})
	require.NoError(t, err)
	assert.Contains(t, got.RawJSON(), `"session_id":null`)
}

func requireAPIError(t *testing.T, err error, status int, mentions ...string) *anthropic.Error {
	t.Helper()
	var apiErr *anthropic.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, status, apiErr.StatusCode, apiErr.Error())
	for _, m := range mentions {
		assert.Contains(t, apiErr.Error(), m)
	}
	return apiErr
}

// Issue 12 point 4: the body limit and the beta check belong to sandbox0d's
// own routes. Proxied SDK calls stream with the client's own beta and a
// separate cap (upstream.max_proxy_body).
func TestProxiedSDKCallsAreNotHeldToTheDeploymentsAPIRules(t *testing.T) {
	t.Parallel()
	fake := fakeupstream.New(t)
	fake.AddAgent("agent_a", 4)
	fake.AddEnvironment("env_1")
	fake.AddMemoryStore("memstore_1")
	cfg := baseConfig(t.TempDir())
	cfg.Backend = "upstream"
	cfg.Upstream = daemon.UpstreamConfig{URL: fake.URL, APIKey: fake.APIKey(), RetryWindow: 1e9, MaxConcurrency: 4,
		RequestTimeout: 5e9, MaxProxyBody: 4 << 20}
	c := start(t, cfg, daemon.Options{}).client()
	ctx := t.Context()

	upload := bytes.Repeat([]byte("x"), 2_500_000)
	f, err := c.Beta.Files.Upload(ctx, anthropic.BetaFileUploadParams{
		File:  anthropic.File(bytes.NewReader(upload), "report.csv", "text/csv"),
		Betas: []anthropic.AnthropicBeta{anthropic.AnthropicBetaFilesAPI2025_04_14},
	})
	require.NoError(t, err, "a 2.5 MB upload is not held to the 1 MiB limit of the Deployments API")
	assert.Equal(t, int64(len(upload)), f.SizeBytes)
	assert.Equal(t, fakeupstream.FilesBeta, fake.RequestsTo(fakeupstream.RouteUploadFile)[0].Header.Get("anthropic-beta"))

	models, err := c.Models.List(ctx, anthropic.ModelListParams{})
	require.NoError(t, err, "the Models API takes no beta")
	require.NotEmpty(t, models.Data)

	ms, err := c.Beta.MemoryStores.Get(ctx, "memstore_1", anthropic.BetaMemoryStoreGetParams{})
	require.NoError(t, err, "memory stores go out with their own beta")
	assert.Equal(t, "memstore_1", ms.ID)

	// The proxy's own cap still holds.
	_, err = c.Beta.Files.Upload(ctx, anthropic.BetaFileUploadParams{
		File:  anthropic.File(bytes.NewReader(bytes.Repeat([]byte("x"), 5<<20)), "big.bin", "application/octet-stream"),
		Betas: []anthropic.AnthropicBeta{anthropic.AnthropicBetaFilesAPI2025_04_14},
	})
	requireAPIError(t, err, 413, "upstream.max_proxy_body")

	// sandbox0d's own routes keep the beta check and the 1 MiB limit.
	p := createParams("big")
	p.Description = param.NewOpt(strings.Repeat("d", 2<<20))
	_, err = c.Beta.Deployments.New(ctx, p)
	requireAPIError(t, err, 413)
	_, err = c.Beta.Deployments.List(ctx, anthropic.BetaDeploymentListParams{}, option.WithHeader("anthropic-beta", "files-api-2025-04-14"))
	requireAPIError(t, err, 400, "managed-agents-2026-04-01")
}

// Issue 12 point 5: sessions sandbox0d created can be found by deployment,
// and the proxied session objects say which deployment they belong to.
func TestSessionsOfADeploymentThroughTheProxy(t *testing.T) {
	t.Parallel()
	fake, c := upstreamDaemon(t)
	ctx := t.Context()
	p := createParams("sessions")
	p.Metadata = map[string]string{}
	for i := range 16 { // no room for the run's metadata keys: the records must do
		p.Metadata[fmt.Sprintf("key_%02d", i)] = "v"
	}
	d, err := c.Beta.Deployments.New(ctx, p)
	require.NoError(t, err)
	other, err := c.Beta.Deployments.New(ctx, createParams("other"))
	require.NoError(t, err)
	var mine []string
	for range 3 {
		run, err := c.Beta.Deployments.Run(ctx, d.ID, anthropic.BetaDeploymentRunParams{})
		require.NoError(t, err)
		require.NotEmpty(t, run.SessionID)
		mine = append(mine, run.SessionID)
	}
	otherRun, err := c.Beta.Deployments.Run(ctx, other.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)

	var got []string
	pager := c.Beta.Sessions.ListAutoPaging(ctx, anthropic.BetaSessionListParams{DeploymentID: param.NewOpt(d.ID), Limit: param.NewOpt(int64(2))})
	for pager.Next() {
		s := pager.Current()
		assert.Equal(t, d.ID, s.DeploymentID)
		got = append(got, s.ID)
	}
	require.NoError(t, pager.Err())
	assert.Equal(t, []string{mine[2], mine[1], mine[0]}, got, "newest first, across pages")

	s, err := c.Beta.Sessions.Get(ctx, mine[0], anthropic.BetaSessionGetParams{})
	require.NoError(t, err)
	assert.Equal(t, d.ID, s.DeploymentID, "retrieve fills deployment_id")

	all, err := c.Beta.Sessions.List(ctx, anthropic.BetaSessionListParams{})
	require.NoError(t, err)
	byID := map[string]string{}
	for _, s := range all.Data {
		byID[s.ID] = s.DeploymentID
	}
	assert.Equal(t, other.ID, byID[otherRun.SessionID], "list fills deployment_id")
	assert.Equal(t, d.ID, byID[mine[1]])
	for _, sess := range fake.Sessions() {
		assert.Contains(t, byID, sess.ID)
	}

	empty, err := c.Beta.Sessions.List(ctx, anthropic.BetaSessionListParams{DeploymentID: param.NewOpt("depl_unknown")})
	require.NoError(t, err)
	assert.Empty(t, empty.Data)
	_, err = c.Beta.Sessions.List(ctx, anthropic.BetaSessionListParams{DeploymentID: param.NewOpt(d.ID), AgentID: param.NewOpt("agent_a")})
	requireAPIError(t, err, 400, "agent_id")
}
