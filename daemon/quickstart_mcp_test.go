package daemon_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An API agent's MCP server is reached only through the session's egress
// rules: from a limited environment with allow_mcp_servers Claude Code
// connects to it (through the egress proxy); with allow_mcp_servers off
// the same agent's turn runs and ends, and the server never hears from it.
func TestAPIAgentMCPServerOnlyThroughEgressRules(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	mcp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "not an MCP server", http.StatusNotFound) // enough: it was reached
	}))
	t.Cleanup(mcp.Close)
	r, fake, cfg := newAPIRig(t)
	if cfg.Local.Sandbox == "none" {
		t.Skip("limited networks need the sandbox")
	}
	client := r.client()
	ctx := context.Background()
	fakeHost := strings.TrimPrefix(fake.URL, "http://")
	mcpHost := strings.TrimPrefix(mcp.URL, "http://")

	agent, err := client.Beta.Agents.New(ctx, anthropic.BetaAgentNewParams{
		Name: "with-mcp", Model: anthropic.BetaManagedAgentsModelConfigParams{ID: ccModel},
		MCPServers: []anthropic.BetaManagedAgentsURLMCPServerParams{{Name: "probe", URL: mcp.URL + "/mcp"}},
		Tools: []anthropic.BetaAgentNewParamsToolUnion{{OfMCPToolset: &anthropic.BetaManagedAgentsMCPToolsetParams{
			MCPServerName: "probe",
			DefaultConfig: anthropic.BetaManagedAgentsMCPToolsetDefaultConfigParams{PermissionPolicy: anthropic.BetaManagedAgentsMCPToolsetDefaultConfigParamsPermissionPolicyUnion{
				OfAlwaysAllow: &anthropic.BetaManagedAgentsAlwaysAllowPolicyParam{}}}}}},
	})
	require.NoError(t, err)
	vault, err := client.Beta.Vaults.New(ctx, anthropic.BetaVaultNewParams{DisplayName: "LLM"})
	require.NoError(t, err)
	_, err = client.Beta.Vaults.Credentials.New(ctx, vault.ID, anthropic.BetaVaultCredentialNewParams{
		Auth: anthropic.BetaVaultCredentialNewParamsAuthUnion{OfEnvironmentVariable: &anthropic.BetaManagedAgentsEnvironmentVariableCreateParams{
			SecretName: "ANTHROPIC_API_KEY", SecretValue: ccKey,
			Networking: anthropic.BetaManagedAgentsCredentialNetworkingParamsUnion{OfUnrestricted: &anthropic.BetaManagedAgentsUnrestrictedCredentialNetworkingParams{}}}}})
	require.NoError(t, err)

	limited := func(allowMCP bool) string {
		t.Helper()
		env, err := client.Beta.Environments.New(ctx, anthropic.BetaEnvironmentNewParams{Name: "limited",
			Config: anthropic.BetaEnvironmentNewParamsConfigUnion{OfCloud: &anthropic.BetaCloudConfigParams{
				Networking: anthropic.BetaCloudConfigParamsNetworkingUnion{OfLimited: &anthropic.BetaLimitedNetworkParams{
					AllowedHosts: []string{fakeHost}, AllowMCPServers: anthropic.Bool(allowMCP)}}}}})
		require.NoError(t, err)
		return env.ID
	}
	turn := func(envID string) {
		t.Helper()
		s, err := client.Beta.Sessions.New(ctx, anthropic.BetaSessionNewParams{
			Agent:         anthropic.BetaSessionNewParamsAgentUnion{OfString: anthropic.String(agent.ID)},
			EnvironmentID: envID, VaultIDs: []string{vault.ID}})
		require.NoError(t, err)
		_, err = client.Beta.Sessions.Events.Send(ctx, s.ID, anthropic.BetaSessionEventSendParams{
			Events: []anthropic.BetaManagedAgentsEventParamsUnion{userMessage("Say hello.")}})
		require.NoError(t, err)
		idle := (&ccRig{r: r, c: client, fake: fake, cfg: cfg}).awaitStop(t, s.ID, 1)
		require.Equal(t, "session.status_idle", idle.Type, "%s", idle.RawJSON())
		assert.Equal(t, "end_turn", idle.StopReason.Type)
	}

	turn(limited(false))
	assert.Zero(t, hits.Load(), "allow_mcp_servers off: the MCP server is not reachable")
	// It tried, and the egress proxy said no (not a client that never asked).
	assert.Contains(t, r.logs.String(), "destination="+mcpHost)
	turn(limited(true))
	assert.Positive(t, hits.Load(), "allow_mcp_servers on: Claude Code reached %s through the egress proxy", mcpHost)
}
