package daemon_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/internal/fakemessages"
	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/store/storetest"
)

// The API catalog in a cluster: agents, environments, vaults and
// credentials live in the shared store (etcd), so each is created on one
// node and served and resolved by every node. Three nodes on an embedded
// three-member etcd, one age identity on all of them (as docs/cluster.md
// says), the real Claude Code CLI under bubblewrap against the scripted
// Messages API: agents.create on node-1, environments.create on node-2, a
// vault and its credential on node-0; a session created through node-0 and
// placed on node-1, and a deployment run through node-0 placed on node-2,
// both run that agent with that credential (the fake receives the real
// key, which only the node's egress proxy could have opened from the
// shared store); agents.update on node-2 is version 2 on node-0 at once.
// The secret is in no response, event, log, node file or etcd value.
func TestClusterCatalogSharedByEveryNode(t *testing.T) {
	bin := claudeCodeBinary(t)
	fake := fakemessages.New(t, fakemessages.Options{APIKey: ccKey, Model: ccModel,
		Next: func(int, *fakemessages.MessagesRequest) fakemessages.Reply {
			return fakemessages.Reply{Blocks: []fakemessages.Block{fakemessages.Text("Hello from the cluster.")}}
		}})
	etcd := storetest.Start(t, 3)
	identity := filepath.Join(t.TempDir(), "identity.txt") // node-0 creates it; the others read it
	nodes := startLocalClusterOn(t, etcd, 3, func(cfg *daemon.Config) {
		cfg.IdentityFile = identity
		cfg.Local.Sandbox = "auto"
		cfg.Local.ClaudeBinary = bin
		cfg.Local.ClaudeEnv = map[string]string{"ANTHROPIC_BASE_URL": fake.URL}
		if cfg.Cluster.NodeName == "node-2" {
			// A vault an older build kept in this node's own file.
			st, err := store.Open(filepath.Join(cfg.DataDir, store.FileName), store.Options{})
			require.NoError(t, err)
			own, err := st.Namespace(store.NamespaceCatalog)
			require.NoError(t, err)
			require.NoError(t, own.Update(func(tx *store.NamespaceTx) error {
				return tx.Bucket("api_vaults").Put([]byte("vlt_stale"), []byte(`{"id":"vlt_stale","display_name":"stale"}`))
			}))
			require.NoError(t, st.Close())
		}
	})
	a, b, c := nodes[0], nodes[1], nodes[2]
	assert.Contains(t, c.logs.String(), "holds API-created agents, environments, vaults or credentials from before the catalog was shared")
	assert.NotContains(t, a.logs.String(), "from before the catalog was shared")
	ca, cb, cc := a.client(), b.client(), c.client()
	ctx := context.Background()
	var responses []string // every response body that touched the catalog

	// 1. The agent on node-1, the environment on node-2, the vault and its
	// credential on node-0.
	agent, err := cb.Beta.Agents.New(ctx, anthropic.BetaAgentNewParams{
		Name:   "Cluster Assistant",
		Model:  anthropic.BetaManagedAgentsModelConfigParams{ID: ccModel},
		System: anthropic.String("You are cluster agent v1."),
	})
	require.NoError(t, err)
	env, err := cc.Beta.Environments.New(ctx, anthropic.BetaEnvironmentNewParams{
		Name: "cluster-env",
		Config: anthropic.BetaEnvironmentNewParamsConfigUnion{OfCloud: &anthropic.BetaCloudConfigParams{
			Networking: anthropic.BetaCloudConfigParamsNetworkingUnion{OfUnrestricted: &anthropic.BetaUnrestrictedNetworkParam{}},
		}},
	})
	require.NoError(t, err)
	vault, err := ca.Beta.Vaults.New(ctx, anthropic.BetaVaultNewParams{DisplayName: "LLM"})
	require.NoError(t, err)
	cred, err := ca.Beta.Vaults.Credentials.New(ctx, vault.ID, anthropic.BetaVaultCredentialNewParams{
		Auth: anthropic.BetaVaultCredentialNewParamsAuthUnion{OfEnvironmentVariable: &anthropic.BetaManagedAgentsEnvironmentVariableCreateParams{
			SecretName:  "ANTHROPIC_API_KEY",
			SecretValue: ccKey,
			Networking: anthropic.BetaManagedAgentsCredentialNetworkingParamsUnion{OfLimited: &anthropic.BetaManagedAgentsLimitedCredentialNetworkingParams{
				AllowedHosts: []string{"127.0.0.1"}}},
		}},
	})
	require.NoError(t, err)
	responses = append(responses, agent.RawJSON(), env.RawJSON(), vault.RawJSON(), cred.RawJSON())

	// Every node serves all four, the same; the agent list (the config's
	// agents too, whose created_at is when the cluster first saw them) is
	// the same document on every node.
	var agentLists []string
	for _, n := range nodes {
		cl := n.client()
		got, err := cl.Beta.Agents.Get(ctx, agent.ID, anthropic.BetaAgentGetParams{})
		require.NoError(t, err, n.name)
		assert.Equal(t, "You are cluster agent v1.", got.System, n.name)
		e, err := cl.Beta.Environments.Get(ctx, env.ID, anthropic.BetaEnvironmentGetParams{})
		require.NoError(t, err, n.name)
		assert.Equal(t, "unrestricted", e.Config.Networking.Type, n.name)
		v, err := cl.Beta.Vaults.Get(ctx, vault.ID, anthropic.BetaVaultGetParams{})
		require.NoError(t, err, n.name)
		assert.Equal(t, "LLM", v.DisplayName, n.name)
		creds, err := cl.Beta.Vaults.Credentials.List(ctx, vault.ID, anthropic.BetaVaultCredentialListParams{})
		require.NoError(t, err, n.name)
		require.Len(t, creds.Data, 1, n.name)
		assert.Equal(t, cred.ID, creds.Data[0].ID, n.name)
		agents, err := cl.Beta.Agents.List(ctx, anthropic.BetaAgentListParams{})
		require.NoError(t, err, n.name)
		require.Len(t, agents.Data, 4, n.name)
		assert.Equal(t, agent.ID, agents.Data[0].ID, "newest first")
		agentLists = append(agentLists, agents.RawJSON())
		responses = append(responses, got.RawJSON(), e.RawJSON(), v.RawJSON(), creds.RawJSON(), agents.RawJSON())
	}

	_, err = cc.Beta.Vaults.Get(ctx, "vlt_stale", anthropic.BetaVaultGetParams{})
	require.Error(t, err, "the node file's own catalog is not served")
	assert.Equal(t, agentLists[0], agentLists[1])
	assert.Equal(t, agentLists[0], agentLists[2])

	// 2. sessions.create through node-0, cordoned: placed on node-1 (the
	// most free slots, ties by name). It resolves the agent, environment
	// and vault there; its turn runs with the credential node-0 sealed.
	cordon(t, a, "cordon", a.name)
	for _, n := range nodes { // every node's load known: placement decides (not "this node" for want of loads)
		n.d.PublishLoad()
	}
	sess, err := ca.Beta.Sessions.New(ctx, anthropic.BetaSessionNewParams{
		Agent:         anthropic.BetaSessionNewParamsAgentUnion{OfString: anthropic.String(agent.ID)},
		EnvironmentID: env.ID, VaultIDs: []string{vault.ID},
	})
	require.NoError(t, err)
	assert.Equal(t, b.name, sessionNode(t, a, sess.ID), "placed on node-1")
	assert.Equal(t, int64(1), sess.Agent.Version)
	_, err = ca.Beta.Sessions.Events.Send(ctx, sess.ID, anthropic.BetaSessionEventSendParams{
		Events: []anthropic.BetaManagedAgentsEventParamsUnion{userMessage("Say hello.")}})
	require.NoError(t, err)
	idle := (&ccRig{c: ca}).awaitStop(t, sess.ID, 1)
	require.Equal(t, "session.status_idle", idle.Type, "%s\nnode-1 log:\n%s", idle.RawJSON(), b.logs.String())
	assert.Equal(t, "end_turn", idle.StopReason.Type)
	calls := fake.ModelCalls()
	require.NotEmpty(t, calls)
	assert.Contains(t, systemOf(calls[len(calls)-1]), "cluster agent v1")

	// 3. A deployment created through node-0 pinned to version 1, run
	// through node-0 with node-1 cordoned too: placed on node-2.
	cordon(t, a, "cordon", b.name)
	params := createParams("cluster-catalog")
	params.Agent = anthropic.BetaDeploymentNewParamsAgentUnion{OfBetaManagedAgentsAgent: &anthropic.BetaManagedAgentsAgentParams{
		ID: agent.ID, Version: anthropic.Int(1)}}
	params.EnvironmentID = env.ID
	params.VaultIDs = []string{vault.ID}
	params.Resources = nil
	params.InitialEvents[0].OfUserMessage.Content[0].OfText.Text = "Say hello."
	pinned, err := ca.Beta.Deployments.New(ctx, params)
	require.NoError(t, err)
	runOn := func(dep *anthropic.BetaManagedAgentsDeployment, want *localClusterNode) string {
		t.Helper()
		run, err := ca.Beta.Deployments.Run(ctx, dep.ID, anthropic.BetaDeploymentRunParams{})
		require.NoError(t, err)
		require.NotEmpty(t, run.SessionID, "run error: %+v", run.Error)
		assert.Equal(t, want.name, sessionNode(t, a, run.SessionID))
		idle := (&ccRig{c: ca}).awaitStop(t, run.SessionID, 1)
		require.Equal(t, "session.status_idle", idle.Type, "%s\n%s log:\n%s", idle.RawJSON(), want.name, want.logs.String())
		return run.SessionID
	}
	first := runOn(pinned, c)
	assert.Contains(t, systemOf(fake.ModelCalls()[len(fake.ModelCalls())-1]), "cluster agent v1")

	// 4. agents.update on node-2 makes version 2, seen from node-0 at once;
	// a stale update through node-1 is refused.
	v2, err := cc.Beta.Agents.Update(ctx, agent.ID, anthropic.BetaAgentUpdateParams{
		Version: anthropic.Int(1), System: anthropic.String("You are cluster agent v2.")})
	require.NoError(t, err)
	assert.Equal(t, int64(2), v2.Version)
	latest, err := ca.Beta.Agents.Get(ctx, agent.ID, anthropic.BetaAgentGetParams{})
	require.NoError(t, err)
	assert.Equal(t, int64(2), latest.Version)
	assert.Equal(t, "You are cluster agent v2.", latest.System)
	_, err = cb.Beta.Agents.Update(ctx, agent.ID, anthropic.BetaAgentUpdateParams{
		Version: anthropic.Int(1), System: anthropic.String("lost update")})
	var apiErr *anthropic.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 409, apiErr.StatusCode)
	versions, err := ca.Beta.Agents.Versions.List(ctx, agent.ID, anthropic.BetaAgentVersionListParams{})
	require.NoError(t, err)
	require.Len(t, versions.Data, 2)
	// The pinned deployment still runs version 1 on node-2; one naming the
	// agent alone runs version 2 there.
	runOn(pinned, c)
	assert.Contains(t, systemOf(fake.ModelCalls()[len(fake.ModelCalls())-1]), "cluster agent v1")
	params.Name = "cluster-catalog-latest"
	params.Agent = anthropic.BetaDeploymentNewParamsAgentUnion{OfString: anthropic.String(agent.ID)}
	unpinned, err := ca.Beta.Deployments.New(ctx, params)
	require.NoError(t, err)
	third := runOn(unpinned, c)
	assert.Contains(t, systemOf(fake.ModelCalls()[len(fake.ModelCalls())-1]), "cluster agent v2")
	got, err := ca.Beta.Sessions.Get(ctx, third, anthropic.BetaSessionGetParams{})
	require.NoError(t, err)
	assert.Equal(t, int64(2), got.Agent.Version)
	assert.Equal(t, "You are cluster agent v2.", got.Agent.System)
	responses = append(responses, v2.RawJSON(), latest.RawJSON(), versions.RawJSON(), got.RawJSON())

	// 5. The secret: never in a response, an event, a log or a node's
	// files; in etcd only sealed; the fake received it, from the proxies.
	for _, n := range nodes {
		cl := n.client()
		gc, err := cl.Beta.Vaults.Credentials.Get(ctx, cred.ID, anthropic.BetaVaultCredentialGetParams{VaultID: vault.ID})
		require.NoError(t, err)
		responses = append(responses, gc.RawJSON())
	}
	for i, body := range responses {
		assert.NotContains(t, body, ccKey, "response %d", i)
	}
	for _, n := range nodes {
		(&ccRig{r: n.running, c: n.client(), fake: fake, cfg: n.cfg}).noSecret(t, sess.ID, first, third)
	}
	kv := etcd.Dump(t, "/sess-test/")
	catalogKeys := 0
	for k, v := range kv {
		assert.NotContains(t, string(v), ccKey, "etcd key %s", k)
		if strings.HasPrefix(k, "/sess-test/b/local_api_") {
			catalogKeys++
		}
	}
	assert.Equal(t, 5, catalogKeys, "agent v1 and v2, the environment, the vault and the credential are in etcd")
	assert.Empty(t, fake.Violations(), "every model call carried the real key")
}
