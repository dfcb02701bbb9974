package local

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/sessions/local/claudecode"
)

const catalogSecret = "sk-catalog-Zq81never-in-clear"

func newCatalogRig(t *testing.T) (*testRig, *crypto.Keyring) {
	t.Helper()
	k, err := crypto.GenerateKeyring()
	require.NoError(t, err)
	return newRig(t, nil, func(c *Config) { c.Sealer = k }), k
}

func catalogStatus(t *testing.T, err error) (int, string) {
	t.Helper()
	var apiErr *anthropic.Error
	require.ErrorAs(t, err, &apiErr)
	return apiErr.StatusCode, apiErr.Error()
}

func llmCredential(name, value string, hosts ...string) anthropic.BetaVaultCredentialNewParams {
	net := anthropic.BetaManagedAgentsCredentialNetworkingParamsUnion{OfUnrestricted: &anthropic.BetaManagedAgentsUnrestrictedCredentialNetworkingParams{}}
	if len(hosts) > 0 {
		net = anthropic.BetaManagedAgentsCredentialNetworkingParamsUnion{OfLimited: &anthropic.BetaManagedAgentsLimitedCredentialNetworkingParams{AllowedHosts: hosts}}
	}
	return anthropic.BetaVaultCredentialNewParams{Auth: anthropic.BetaVaultCredentialNewParamsAuthUnion{
		OfEnvironmentVariable: &anthropic.BetaManagedAgentsEnvironmentVariableCreateParams{
			SecretName: name, SecretValue: value, Networking: net}}}
}

// Credentials: secret_value is write-only, sealed in the file, opened for
// the projection seam, and gone from everything else.
func TestCredentialSecretIsWriteOnlyAndSealed(t *testing.T) {
	rig, k := newCatalogRig(t)
	ctx := t.Context()
	v, err := rig.client.Beta.Vaults.New(ctx, anthropic.BetaVaultNewParams{DisplayName: "svc"})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(v.ID, "vlt_"))
	c, err := rig.client.Beta.Vaults.Credentials.New(ctx, v.ID, llmCredential("SVC_TOKEN", catalogSecret, "api.example.com", "*.example.org"))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(c.ID, "vcrd_"))
	assert.Equal(t, "limited", c.Auth.Networking.Type)
	assert.Equal(t, []string{"api.example.com", "*.example.org"}, c.Auth.Networking.AllowedHosts)
	assert.True(t, c.Auth.InjectionLocation.Header)
	assert.False(t, c.Auth.InjectionLocation.Body)

	got, err := rig.client.Beta.Vaults.Credentials.Get(ctx, c.ID, anthropic.BetaVaultCredentialGetParams{VaultID: v.ID})
	require.NoError(t, err)
	list, err := rig.client.Beta.Vaults.Credentials.List(ctx, v.ID, anthropic.BetaVaultCredentialListParams{})
	require.NoError(t, err)
	for _, raw := range []string{c.RawJSON(), got.RawJSON(), list.RawJSON()} {
		assert.NotContains(t, raw, catalogSecret)
		assert.NotContains(t, raw, "secret_value")
	}

	// The seam the projection helper takes: opened, with the scope.
	creds, found, err := rig.b.apiVaultCredentials(v.ID)
	require.NoError(t, err)
	require.True(t, found)
	require.Len(t, creds, 1)
	assert.Equal(t, catalogSecret, creds[0].Value)
	assert.Equal(t, "SVC_TOKEN", creds[0].Name)
	assert.Equal(t, []string{"api.example.com", "*.example.org"}, creds[0].Hosts)
	assert.True(t, creds[0].Header)
	_, found, err = rig.b.apiVaultCredentials("vlt_nope")
	require.NoError(t, err)
	assert.False(t, found)

	// Rotating the value: the new one is what opens.
	_, err = rig.client.Beta.Vaults.Credentials.Update(ctx, c.ID, anthropic.BetaVaultCredentialUpdateParams{VaultID: v.ID,
		Auth: anthropic.BetaVaultCredentialUpdateParamsAuthUnion{OfEnvironmentVariable: &anthropic.BetaManagedAgentsEnvironmentVariableUpdateParams{
			SecretValue: anthropic.String(catalogSecret + "-2")}}})
	require.NoError(t, err)
	creds, _, err = rig.b.apiVaultCredentials(v.ID)
	require.NoError(t, err)
	assert.Equal(t, catalogSecret+"-2", creds[0].Value)

	// The file holds it sealed (a copy of the file is a backup), and bound
	// to the credential: the blob opens for its owner only.
	var backup bytes.Buffer
	_, err = rig.st.WriteBackup(&backup)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(rig.dir, "backup.db"), backup.Bytes(), 0o600))
	for _, f := range []string{filepath.Join(rig.dir, "state.db"), filepath.Join(rig.dir, "backup.db")} {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		assert.False(t, bytes.Contains(data, []byte(catalogSecret)), "%s holds the secret in clear", f)
	}
	n := 0
	for owner, blob := range SealedCredentials(rig.b.catalog.ns) {
		n++
		assert.Equal(t, c.ID, owner.DeploymentID)
		_, err := k.Open(crypto.Owner{DeploymentID: "vcrd_other"}, blob)
		assert.Error(t, err)
	}
	assert.Equal(t, 1, n)
	assert.NotContains(t, rig.logs.String(), catalogSecret)

	// A second active credential for the same variable is a conflict;
	// archived ones are not projected; delete removes it.
	_, err = rig.client.Beta.Vaults.Credentials.New(ctx, v.ID, llmCredential("SVC_TOKEN", "x"))
	status, msg := catalogStatus(t, err)
	assert.Equal(t, http.StatusConflict, status)
	assert.Contains(t, msg, "auth.secret_name")
	_, err = rig.client.Beta.Vaults.Credentials.Archive(ctx, c.ID, anthropic.BetaVaultCredentialArchiveParams{VaultID: v.ID})
	require.NoError(t, err)
	creds, _, err = rig.b.apiVaultCredentials(v.ID)
	require.NoError(t, err)
	assert.Empty(t, creds)
	list, err = rig.client.Beta.Vaults.Credentials.List(ctx, v.ID, anthropic.BetaVaultCredentialListParams{IncludeArchived: anthropic.Bool(true)})
	require.NoError(t, err)
	assert.Len(t, list.Data, 1)
	_, err = rig.client.Beta.Vaults.Credentials.Delete(ctx, c.ID, anthropic.BetaVaultCredentialDeleteParams{VaultID: v.ID})
	require.NoError(t, err)
	_, err = rig.client.Beta.Vaults.Credentials.Get(ctx, c.ID, anthropic.BetaVaultCredentialGetParams{VaultID: v.ID})
	status, _ = catalogStatus(t, err)
	assert.Equal(t, http.StatusNotFound, status)

	// Key rotation re-seals them all.
	_, err = rig.client.Beta.Vaults.Credentials.New(ctx, v.ID, llmCredential("OTHER", catalogSecret))
	require.NoError(t, err)
	next, err := crypto.GenerateKeyring()
	require.NoError(t, err)
	both := resealWith{old: k, next: next}
	moved, err := ResealCredentials(rig.b.catalog.ns, both)
	require.NoError(t, err)
	assert.Equal(t, 1, moved)
	rig.b.SetSealer(next)
	creds, _, err = rig.b.apiVaultCredentials(v.ID)
	require.NoError(t, err)
	assert.Equal(t, catalogSecret, creds[0].Value)
}

// resealWith opens with old and seals with next (a rotation's keyring
// holds both; two generated keyrings stand in for it here).
type resealWith struct{ old, next *crypto.Keyring }

func (r resealWith) Reseal(owner crypto.Owner, sealed []byte) ([]byte, error) {
	plain, err := r.old.Open(owner, sealed)
	if err != nil {
		return nil, err
	}
	return r.next.Seal(owner, plain)
}

// Refusals name the field path; what the local runtime cannot honour is
// never silently dropped.
func TestCatalogValidationNamesTheField(t *testing.T) {
	rig, _ := newCatalogRig(t)
	vault, err := rig.client.Beta.Vaults.New(t.Context(), anthropic.BetaVaultNewParams{DisplayName: "v"})
	require.NoError(t, err)
	tests := []struct {
		path, body, want string
	}{
		{"/v1/agents", `{"model":"m"}`, "name: is required"},
		{"/v1/agents", `{"name":"a","model":{"id":"m","speed":"fast"}}`, "model.speed: fast"},
		{"/v1/agents", `{"name":"a","model":{"id":"m","inference_geo":"eu"}}`, "model.inference_geo"},
		{"/v1/agents", `{"name":"a","model":"m","skills":[{"type":"anthropic","skill_id":"pdf"}]}`, "skills:"},
		{"/v1/agents", `{"name":"a","model":"m","tools":[{"type":"custom","name":"t","description":"d","input_schema":{}}]}`, "tools[0].type: custom tools"},
		{"/v1/agents", `{"name":"a","model":"m","tools":[{"type":"agent_toolset_20260401","configs":[{"name":"telepathy"}]}]}`, "tools[0].configs[0].name"},
		{"/v1/agents", `{"name":"a","model":"m","tools":[{"type":"agent_toolset_20260401","default_config":{"permission_policy":{"type":"always_ask"}}}]}`, "tools[0].default_config.permission_policy.type: always_ask"},
		{"/v1/agents", `{"name":"a","model":"m","mcp_servers":[{"type":"url","name":"docs","url":"https://mcp.example.com/mcp"}]}`, "mcp_servers[0]: server \"docs\" is not referenced"},
		{"/v1/agents", `{"name":"a","model":"m","mcp_servers":[{"type":"url","name":"docs","url":"https://mcp.example.com/mcp"}],"tools":[{"type":"mcp_toolset","mcp_server_name":"docs"}]}`, "tools[0].default_config: MCP toolsets default to always_ask"},
		{"/v1/agents", `{"name":"a","model":"m","mcp_servers":[{"type":"stdio","name":"x","url":"x"}]}`, "mcp_servers[0].type"},
		{"/v1/agents", `{"name":"a","model":"m","execution_identity":{"type":"aws_role"}}`, "execution_identity.type"},
		{"/v1/agents", `{"name":"a","model":"m","metadata":{"k":1}}`, "metadata: must be an object of string values"},
		{"/v1/environments", `{"name":"e","config":{"type":"cloud","networking":{"type":"unrestricted","allowed_hosts":["x"]}}}`, "config.networking.allowed_hosts: applies to limited"},
		{"/v1/environments", `{"name":"e","config":{"type":"cloud","packages":{"apt":["jq"]}}}`, "config.packages.apt"},
		{"/v1/environments", `{"name":"e","scope":"account"}`, "scope"},
		{"/v1/vaults", `{}`, "display_name: is required"},
		{"/v1/vaults/" + vault.ID + "/credentials", `{"auth":{"type":"static_bearer","mcp_server_url":"https://x","token":"t"}}`, "auth.type: static_bearer"},
		{"/v1/vaults/" + vault.ID + "/credentials", `{"auth":{"type":"environment_variable","secret_name":"1BAD","secret_value":"v","networking":{"type":"unrestricted"}}}`, "auth.secret_name"},
		{"/v1/vaults/" + vault.ID + "/credentials", `{"auth":{"type":"environment_variable","secret_name":"OK","secret_value":"v"}}`, "auth.networking: is required"},
		{"/v1/vaults/" + vault.ID + "/credentials", `{"auth":{"type":"environment_variable","secret_name":"OK","secret_value":"v","networking":{"type":"limited","allowed_hosts":["https://api.example.com"]}}}`, "auth.networking.allowed_hosts[0]"},
		{"/v1/vaults/" + vault.ID + "/credentials", `{"auth":{"type":"environment_variable","secret_name":"OK","secret_value":"v","networking":{"type":"limited","allowed_hosts":["::1"]}}}`, "IPv6"},
	}
	for _, tt := range tests {
		var body struct {
			Error struct{ Message string } `json:"error"`
		}
		resp := rig.call("POST", tt.path, tt.body, &body)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s %s: %s", tt.path, tt.body, body.Error.Message)
		assert.Contains(t, body.Error.Message, tt.want, "%s %s", tt.path, tt.body)
	}
	// Nothing was stored by a refused request.
	agents, err := rig.client.Beta.Agents.List(t.Context(), anthropic.BetaAgentListParams{})
	require.NoError(t, err)
	assert.Empty(t, agents.Data)
}

// Lists page newest first with signed cursors; archived objects are left
// out unless asked for.
func TestCatalogListCursorsAndArchive(t *testing.T) {
	rig, _ := newCatalogRig(t)
	ctx := t.Context()
	var ids []string
	for i := range 5 {
		e, err := rig.client.Beta.Environments.New(ctx, anthropic.BetaEnvironmentNewParams{Name: "env" + string(rune('a'+i))})
		require.NoError(t, err)
		ids = append(ids, e.ID)
	}
	var seen []string
	page, err := rig.client.Beta.Environments.List(ctx, anthropic.BetaEnvironmentListParams{Limit: anthropic.Int(2)})
	require.NoError(t, err)
	for {
		require.LessOrEqual(t, len(page.Data), 2)
		for _, e := range page.Data {
			seen = append(seen, e.ID)
		}
		if page.NextPage == "" {
			break
		}
		page, err = rig.client.Beta.Environments.List(ctx, anthropic.BetaEnvironmentListParams{Limit: anthropic.Int(2), Page: anthropic.String(page.NextPage)})
		require.NoError(t, err)
	}
	// The config's environment too; every one once.
	assert.Len(t, seen, 6)
	assert.ElementsMatch(t, append(ids, testEnvironment), seen)

	// A cursor of another listing is refused.
	vpage, err := rig.client.Beta.Environments.List(ctx, anthropic.BetaEnvironmentListParams{Limit: anthropic.Int(1)})
	require.NoError(t, err)
	_, err = rig.client.Beta.Vaults.List(ctx, anthropic.BetaVaultListParams{Page: anthropic.String(vpage.NextPage)})
	status, _ := catalogStatus(t, err)
	assert.Equal(t, http.StatusBadRequest, status)

	archived, err := rig.client.Beta.Environments.Archive(ctx, ids[0], anthropic.BetaEnvironmentArchiveParams{})
	require.NoError(t, err)
	assert.NotEmpty(t, archived.ArchivedAt)
	all, err := rig.client.Beta.Environments.List(ctx, anthropic.BetaEnvironmentListParams{})
	require.NoError(t, err)
	assert.Len(t, all.Data, 5)
	all, err = rig.client.Beta.Environments.List(ctx, anthropic.BetaEnvironmentListParams{IncludeArchived: anthropic.Bool(true)})
	require.NoError(t, err)
	assert.Len(t, all.Data, 6)

	// An archived agent, environment or vault is refused for new sessions.
	agent, err := rig.client.Beta.Agents.New(ctx, anthropic.BetaAgentNewParams{Name: "a", Model: anthropic.BetaManagedAgentsModelConfigParams{ID: "m"}})
	require.NoError(t, err)
	_, err = rig.client.Beta.Sessions.New(ctx, anthropic.BetaSessionNewParams{
		Agent: anthropic.BetaSessionNewParamsAgentUnion{OfString: anthropic.String(agent.ID)}, EnvironmentID: ids[0]})
	status, msg := catalogStatus(t, err)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, msg, "archived")
	_, err = rig.client.Beta.Agents.Archive(ctx, agent.ID, anthropic.BetaAgentArchiveParams{})
	require.NoError(t, err)
	_, err = rig.client.Beta.Sessions.New(ctx, anthropic.BetaSessionNewParams{
		Agent: anthropic.BetaSessionNewParamsAgentUnion{OfString: anthropic.String(agent.ID)}, EnvironmentID: ids[1]})
	status, msg = catalogStatus(t, err)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, msg, "archived")
	_, err = rig.client.Beta.Agents.Update(ctx, agent.ID, anthropic.BetaAgentUpdateParams{Name: anthropic.String("b")})
	status, _ = catalogStatus(t, err)
	assert.Equal(t, http.StatusConflict, status)
}

// Ids never collide: API ids are minted in the official alphabet, and a
// config id equal to an API-created one is refused at start.
func TestCatalogIDsNeverCollide(t *testing.T) {
	rig, _ := newCatalogRig(t)
	e, err := rig.client.Beta.Environments.New(t.Context(), anthropic.BetaEnvironmentNewParams{Name: "x"})
	require.NoError(t, err)
	cfg := rig.cfg
	cfg.Environments = append(cfg.Environments, Environment{ID: e.ID})
	_, err = New(rig.ns, cfg)
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "local.environments[1].id", ce.Key)
}

// The mapping of an API agent onto Claude Code's flags (the table of
// docs/claude-code.md).
func claudeTurn() claudecode.TurnArgs { return claudecode.TurnArgs{ClaudeSessionID: "s"} }

func TestClaudeCodeMapping(t *testing.T) {
	sys := "be brief"
	a := apiAgent{ID: "agent_x", Version: 3, Model: modelConfig{ID: "claude-m", Effort: "high"}, System: &sys,
		Tools: []toolset{
			{Type: agentToolsetType, DefaultConfig: toolConfig{Enabled: true, PermissionPolicy: policyAllow},
				Configs: []toolConfig{{Name: "web_search", Enabled: false}, {Name: "web_fetch", Enabled: true, PermissionPolicy: policyAllow}}},
			{Type: mcpToolsetType, MCPServerName: "docs", DefaultConfig: toolConfig{Enabled: true, PermissionPolicy: policyAllow},
				Configs: []toolConfig{{Name: "delete_all", Enabled: false}}},
		},
		MCPServers: []mcpServer{{Name: "docs", URL: "https://mcp.example.com:8443/mcp"}}}
	cfg, err := claudeCodeConfig(a, "/bin/claude")
	require.NoError(t, err)
	argv := strings.Join(cfg.Argv("/bin/claude", claudeTurn()), " ")
	assert.Contains(t, argv, "--model claude-m")
	assert.Contains(t, argv, "--effort high")
	assert.Contains(t, argv, "--system-prompt be brief")
	assert.Contains(t, argv, "--tools Bash,Edit,Read,Write,Glob,Grep,WebFetch ")
	assert.Contains(t, argv, "--permission-mode dontAsk")
	assert.Contains(t, argv, "--allowedTools Bash,Edit,Glob,Grep,Read,WebFetch,Write,mcp__docs")
	assert.Contains(t, argv, "--disallowedTools mcp__docs__delete_all")
	assert.Contains(t, argv, `--mcp-config {"mcpServers":{"docs":{"type":"http","url":"https://mcp.example.com:8443/mcp"}}} --strict-mcp-config`)
	assert.Equal(t, []string{"mcp.example.com:8443"}, mcpHosts(a.MCPServers))

	// auto anywhere: Claude Code's classifier decides those calls.
	a.Tools[0].DefaultConfig.PermissionPolicy = policyAuto
	cfg, err = claudeCodeConfig(a, "")
	require.NoError(t, err)
	assert.Equal(t, "auto", cfg.PermissionMode)
	// No toolset: no built-in tools at all.
	a.Tools, a.MCPServers = nil, nil
	cfg, err = claudeCodeConfig(a, "")
	require.NoError(t, err)
	assert.Contains(t, cfg.Argv("claude", claudeTurn()), "--tools")
	assert.Empty(t, *cfg.Tools)
}

// An API environment's networking is the sandbox's egress policy, with
// the agent's MCP hosts.
func TestAPIEnvironmentNetworkingIsTheEgressPolicy(t *testing.T) {
	rig, _ := newCatalogRig(t)
	ctx := t.Context()
	e, err := rig.client.Beta.Environments.New(ctx, anthropic.BetaEnvironmentNewParams{Name: "locked",
		Config: anthropic.BetaEnvironmentNewParamsConfigUnion{OfCloud: &anthropic.BetaCloudConfigParams{
			Networking: anthropic.BetaCloudConfigParamsNetworkingUnion{OfLimited: &anthropic.BetaLimitedNetworkParams{
				AllowedHosts: []string{"api.example.com", "*.corp.test"}, AllowMCPServers: anthropic.Bool(true)}}}}})
	require.NoError(t, err)
	assert.Equal(t, "limited", e.Config.Networking.Type)
	assert.True(t, e.Config.Networking.AllowMCPServers)
	env, ok := rig.b.environment(e.ID)
	require.True(t, ok)
	agent := Agent{mcpHosts: []string{"mcp.example.com"}}
	sb := rig.b.sandboxFor(&sessionRun{id: "sesn_x", env: env, agent: agent, workspace: rig.dir})
	assert.True(t, sb.spec.Network.Limited)
	assert.Equal(t, []string{"api.example.com", "*.corp.test"}, sb.spec.Network.AllowedHosts)
	assert.True(t, sb.spec.Network.AllowMCPServers)
	assert.Equal(t, []string{"mcp.example.com"}, sb.spec.Network.MCPServerHosts)
	assert.Equal(t, e.ID, sb.spec.Network.Environment)

	// An update that omits networking keeps it.
	e2, err := rig.client.Beta.Environments.Update(ctx, e.ID, anthropic.BetaEnvironmentUpdateParams{Name: anthropic.String("renamed")})
	require.NoError(t, err)
	assert.Equal(t, "limited", e2.Config.Networking.Type)
	assert.Equal(t, "renamed", e2.Name)
}

// Agents: created_at bounds, versions newest first in pages, and an
// update that changes nothing makes no version.
func TestAgentListFiltersAndVersions(t *testing.T) {
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Minute)
		return now
	}
	k, err := crypto.GenerateKeyring()
	require.NoError(t, err)
	rig := newRig(t, nil, func(c *Config) { c.Sealer, c.Now = k, clock })
	ctx := t.Context()
	var agents []*anthropic.BetaManagedAgentsAgent
	for _, name := range []string{"one", "two", "three"} {
		a, err := rig.client.Beta.Agents.New(ctx, anthropic.BetaAgentNewParams{Name: name, Model: anthropic.BetaManagedAgentsModelConfigParams{ID: "m"}})
		require.NoError(t, err)
		agents = append(agents, a)
	}
	list, err := rig.client.Beta.Agents.List(ctx, anthropic.BetaAgentListParams{CreatedAtGte: anthropic.Time(agents[1].CreatedAt)})
	require.NoError(t, err)
	require.Len(t, list.Data, 2)
	assert.Equal(t, "three", list.Data[0].Name)
	assert.Equal(t, "two", list.Data[1].Name)
	list, err = rig.client.Beta.Agents.List(ctx, anthropic.BetaAgentListParams{CreatedAtLte: anthropic.Time(agents[0].CreatedAt)})
	require.NoError(t, err)
	require.Len(t, list.Data, 1)
	assert.Equal(t, "one", list.Data[0].Name)

	id := agents[0].ID
	for i := range 3 {
		a, err := rig.client.Beta.Agents.Update(ctx, id, anthropic.BetaAgentUpdateParams{System: anthropic.String(fmt.Sprintf("s%d", i))})
		require.NoError(t, err)
		assert.Equal(t, int64(i+2), a.Version)
	}
	same, err := rig.client.Beta.Agents.Update(ctx, id, anthropic.BetaAgentUpdateParams{System: anthropic.String("s2")})
	require.NoError(t, err)
	assert.Equal(t, int64(4), same.Version, "nothing changed: no new version")
	var versions []int64
	page, err := rig.client.Beta.Agents.Versions.List(ctx, id, anthropic.BetaAgentVersionListParams{Limit: anthropic.Int(3)})
	require.NoError(t, err)
	for {
		for _, v := range page.Data {
			versions = append(versions, v.Version)
		}
		if page.NextPage == "" {
			break
		}
		page, err = rig.client.Beta.Agents.Versions.List(ctx, id, anthropic.BetaAgentVersionListParams{Limit: anthropic.Int(3), Page: anthropic.String(page.NextPage)})
		require.NoError(t, err)
	}
	assert.Equal(t, []int64{4, 3, 2, 1}, versions)
	v1, err := rig.client.Beta.Agents.Get(ctx, id, anthropic.BetaAgentGetParams{Version: anthropic.Int(1)})
	require.NoError(t, err)
	assert.Empty(t, v1.System)
	assert.Equal(t, agents[0].CreatedAt, v1.CreatedAt)
}
