package daemon_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/internal/fakemessages"
	"github.com/sandbox0/sandbox0d/internal/tssdktest"
)

// The official Managed Agents quickstart, written as the platform docs
// show it, against a local daemon: agents, environments, vaults and
// credentials are created through the API (nothing in the config but
// where claude is and which Messages API it talks to), a deployment uses
// them, and the real Claude Code CLI runs the turn against the scripted
// Messages API.

// newAPIRig starts a local daemon with no config-declared agents.
func newAPIRig(t *testing.T) (*running, *fakemessages.Server, daemon.Config) {
	bin := claudeCodeBinary(t)
	fake := fakemessages.New(t, fakemessages.Options{APIKey: ccKey, Model: ccModel,
		Next: func(int, *fakemessages.MessagesRequest) fakemessages.Reply {
			return fakemessages.Reply{Blocks: []fakemessages.Block{fakemessages.Text("Hello from the quickstart.")}}
		}})
	cfg := baseConfig(t.TempDir())
	cfg.Backend = "local"
	cfg.Local = daemon.LocalConfig{Sandbox: "auto", ClaudeBinary: bin,
		// Where the scripted Messages API is: not a secret, so not a vault.
		ClaudeEnv: map[string]string{"ANTHROPIC_BASE_URL": fake.URL}}
	return start(t, cfg, daemon.Options{}), fake, cfg
}

// systemOf is the system prompt text of a recorded model call.
func systemOf(req *fakemessages.MessagesRequest) string { return string(req.System) }

func TestQuickstartThroughTheAPIGoSDK(t *testing.T) {
	t.Parallel()
	r, fake, cfg := newAPIRig(t)
	client := r.client()
	ctx := context.Background()

	// 1. Create an agent.
	agent, err := client.Beta.Agents.New(ctx, anthropic.BetaAgentNewParams{
		Name:   "Coding Assistant",
		Model:  anthropic.BetaManagedAgentsModelConfigParams{ID: ccModel},
		System: anthropic.String("You are quickstart agent v1."),
		Tools: []anthropic.BetaAgentNewParamsToolUnion{{
			OfAgentToolset20260401: &anthropic.BetaManagedAgentsAgentToolset20260401Params{},
		}},
	})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(agent.ID, "agent_"), agent.ID)
	assert.Equal(t, int64(1), agent.Version)
	assert.Equal(t, "agent_toolset_20260401", agent.Tools[0].Type)

	// 2. Create an environment.
	env, err := client.Beta.Environments.New(ctx, anthropic.BetaEnvironmentNewParams{
		Name: "quickstart-env",
		Config: anthropic.BetaEnvironmentNewParamsConfigUnion{OfCloud: &anthropic.BetaCloudConfigParams{
			Networking: anthropic.BetaCloudConfigParamsNetworkingUnion{OfUnrestricted: &anthropic.BetaUnrestrictedNetworkParam{}},
		}},
	})
	require.NoError(t, err)
	assert.Equal(t, "unrestricted", env.Config.Networking.Type)

	// 3. A vault with the LLM credential.
	vault, err := client.Beta.Vaults.New(ctx, anthropic.BetaVaultNewParams{DisplayName: "LLM"})
	require.NoError(t, err)
	cred, err := client.Beta.Vaults.Credentials.New(ctx, vault.ID, anthropic.BetaVaultCredentialNewParams{
		Auth: anthropic.BetaVaultCredentialNewParamsAuthUnion{OfEnvironmentVariable: &anthropic.BetaManagedAgentsEnvironmentVariableCreateParams{
			SecretName:  "ANTHROPIC_API_KEY",
			SecretValue: ccKey,
			Networking: anthropic.BetaManagedAgentsCredentialNetworkingParamsUnion{OfLimited: &anthropic.BetaManagedAgentsLimitedCredentialNetworkingParams{
				AllowedHosts: []string{"127.0.0.1"}}},
		}},
	})
	require.NoError(t, err)
	assert.Equal(t, "ANTHROPIC_API_KEY", cred.Auth.SecretName)
	assert.NotContains(t, cred.RawJSON(), ccKey, "secret_value is write-only")

	// 4. A deployment with those ids, pinned to version 1; run it.
	runOnce := func(dep *anthropic.BetaManagedAgentsDeployment) string {
		t.Helper()
		run, err := client.Beta.Deployments.Run(ctx, dep.ID, anthropic.BetaDeploymentRunParams{})
		require.NoError(t, err)
		require.NotEmpty(t, run.SessionID, "run error: %+v", run.Error)
		rig := &ccRig{r: r, c: client, fake: fake, cfg: cfg}
		idle := rig.awaitStop(t, run.SessionID, 1)
		require.Equal(t, "session.status_idle", idle.Type, "%s", idle.RawJSON())
		assert.Equal(t, "end_turn", idle.StopReason.Type)
		return run.SessionID
	}
	params := createParams("quickstart")
	params.Agent = anthropic.BetaDeploymentNewParamsAgentUnion{OfBetaManagedAgentsAgent: &anthropic.BetaManagedAgentsAgentParams{
		ID: agent.ID, Version: anthropic.Int(1)}}
	params.EnvironmentID = env.ID
	params.VaultIDs = []string{vault.ID}
	params.Resources = nil
	params.InitialEvents[0].OfUserMessage.Content[0].OfText.Text = "Say hello."
	pinned, err := client.Beta.Deployments.New(ctx, params)
	require.NoError(t, err)
	first := runOnce(pinned)
	calls := fake.ModelCalls()
	require.NotEmpty(t, calls)
	assert.Equal(t, ccModel, calls[len(calls)-1].Model)
	assert.Contains(t, systemOf(calls[len(calls)-1]), "quickstart agent v1")
	sess, err := client.Beta.Sessions.Get(ctx, first, anthropic.BetaSessionGetParams{})
	require.NoError(t, err)
	assert.Equal(t, agent.ID, sess.Agent.ID)
	assert.Equal(t, int64(1), sess.Agent.Version)
	assert.Equal(t, "You are quickstart agent v1.", sess.Agent.System)
	require.Len(t, sess.Agent.Tools, 1, "the session shows the agent version it runs, whole")
	assert.Equal(t, "agent_toolset_20260401", sess.Agent.Tools[0].Type)

	// 5. agents.update makes version 2 ...
	v2, err := client.Beta.Agents.Update(ctx, agent.ID, anthropic.BetaAgentUpdateParams{
		Version: anthropic.Int(1), System: anthropic.String("You are quickstart agent v2.")})
	require.NoError(t, err)
	assert.Equal(t, int64(2), v2.Version)
	// ... an update against a stale version is refused ...
	_, err = client.Beta.Agents.Update(ctx, agent.ID, anthropic.BetaAgentUpdateParams{
		Version: anthropic.Int(1), System: anthropic.String("lost update")})
	var apiErr *anthropic.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 409, apiErr.StatusCode)
	// ... the pinned deployment still runs version 1 ...
	runOnce(pinned)
	calls = fake.ModelCalls()
	assert.Contains(t, systemOf(calls[len(calls)-1]), "quickstart agent v1")
	assert.NotContains(t, systemOf(calls[len(calls)-1]), "v2")
	// ... and one that names the agent without a version runs version 2.
	params.Name = "quickstart-latest"
	params.Agent = anthropic.BetaDeploymentNewParamsAgentUnion{OfString: anthropic.String(agent.ID)}
	latest, err := client.Beta.Deployments.New(ctx, params)
	require.NoError(t, err)
	third := runOnce(latest)
	calls = fake.ModelCalls()
	assert.Contains(t, systemOf(calls[len(calls)-1]), "quickstart agent v2")
	sess, err = client.Beta.Sessions.Get(ctx, third, anthropic.BetaSessionGetParams{})
	require.NoError(t, err)
	assert.Equal(t, int64(2), sess.Agent.Version)

	versions, err := client.Beta.Agents.Versions.List(ctx, agent.ID, anthropic.BetaAgentVersionListParams{})
	require.NoError(t, err)
	require.Len(t, versions.Data, 2)
	assert.Equal(t, int64(2), versions.Data[0].Version)

	// The secret is nowhere the daemon writes in clear: responses, events,
	// logs, the data dir (the bbolt file holds it sealed).
	got, err := client.Beta.Vaults.Credentials.Get(ctx, cred.ID, anthropic.BetaVaultCredentialGetParams{VaultID: vault.ID})
	require.NoError(t, err)
	assert.NotContains(t, got.RawJSON(), ccKey)
	list, err := client.Beta.Vaults.Credentials.List(ctx, vault.ID, anthropic.BetaVaultCredentialListParams{})
	require.NoError(t, err)
	require.Len(t, list.Data, 1)
	assert.NotContains(t, list.RawJSON(), ccKey)
	(&ccRig{r: r, c: client, fake: fake, cfg: cfg}).noSecret(t, first, third)
	assert.Empty(t, fake.Violations())
}

// The same quickstart with the official TypeScript SDK, as a user script
// (testdata/tssdk/quickstart_api.mjs).
func TestQuickstartThroughTheAPITypeScriptSDK(t *testing.T) {
	t.Parallel()
	node := tssdktest.Require(t)
	r, fake, cfg := newAPIRig(t)
	// Node speaks TCP: a loopback proxy in front of the daemon's socket.
	target, _ := url.Parse("http://daemon")
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", r.socket)
	}}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	out := node.Run(t, "quickstart_api.mjs",
		"SANDBOX0D_ADDR="+srv.URL, "SANDBOX0D_API_KEY=unused-on-the-socket",
		"QUICKSTART_MODEL="+ccModel, "QUICKSTART_LLM_KEY="+ccKey, "QUICKSTART_LLM_HOST=127.0.0.1")
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var stops []string
	for _, l := range lines {
		if strings.HasPrefix(l, "stop ") {
			stops = append(stops, l)
		}
	}
	assert.Equal(t, []string{"stop v1 end_turn pinned", "stop v1 end_turn pinned", "stop v2 end_turn latest"}, stops, "%s", out)
	calls := fake.ModelCalls()
	require.GreaterOrEqual(t, len(calls), 3)
	var systems []string
	for _, c := range calls {
		switch {
		case strings.Contains(systemOf(c), "quickstart agent v1"):
			systems = append(systems, "v1")
		case strings.Contains(systemOf(c), "quickstart agent v2"):
			systems = append(systems, "v2")
		}
	}
	assert.Equal(t, []string{"v1", "v1", "v2"}, systems)
	assert.NotContains(t, string(out), ccKey)
	assert.NotContains(t, r.logs.String(), ccKey)
	_ = filepath.WalkDir(cfg.DataDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if data, err := os.ReadFile(path); err == nil && strings.Contains(string(data), ccKey) {
				t.Errorf("the API key is in %s", path)
			}
		}
		return nil
	})
}
