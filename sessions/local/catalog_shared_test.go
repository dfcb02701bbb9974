package local

import (
	"path/filepath"
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/store"
)

// Two backends, each with its own session file (two cluster nodes), given
// one catalog namespace in a third store (Config.Catalog, the shared store
// in a cluster): what one creates or changes, the other serves and
// resolves at its next request, with nothing cached in between; neither
// session file holds any of it.
func TestCatalogSharedByTwoBackends(t *testing.T) {
	k, err := crypto.GenerateKeyring()
	require.NoError(t, err)
	shared, err := store.Open(filepath.Join(t.TempDir(), "shared.db"), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, shared.Close()) })
	catalog, err := shared.Namespace(store.NamespaceCatalog)
	require.NoError(t, err)
	withShared := func(c *Config) { c.Sealer, c.Catalog = k, catalog }
	a := newRig(t, nil, withShared)
	b := newRig(t, nil, withShared)
	ctx := t.Context()

	agent, err := a.client.Beta.Agents.New(ctx, anthropic.BetaAgentNewParams{Name: "shared",
		Model: anthropic.BetaManagedAgentsModelConfigParams{ID: "m"}, System: anthropic.String("v1")})
	require.NoError(t, err)
	got, err := b.client.Beta.Agents.Get(ctx, agent.ID, anthropic.BetaAgentGetParams{})
	require.NoError(t, err)
	assert.Equal(t, "v1", got.System)
	ref, err := b.b.ResolveAgent(ctx, agent.ID, 0)
	require.NoError(t, err)
	assert.Equal(t, int64(1), ref.Version)

	// An update on b is version 2 on a; a stale update on a is refused.
	v2, err := b.client.Beta.Agents.Update(ctx, agent.ID, anthropic.BetaAgentUpdateParams{Version: anthropic.Int(1), System: anthropic.String("v2")})
	require.NoError(t, err)
	assert.Equal(t, int64(2), v2.Version)
	got, err = a.client.Beta.Agents.Get(ctx, agent.ID, anthropic.BetaAgentGetParams{})
	require.NoError(t, err)
	assert.Equal(t, "v2", got.System)
	ref, err = a.b.ResolveAgent(ctx, agent.ID, 0)
	require.NoError(t, err)
	assert.Equal(t, int64(2), ref.Version)
	_, err = a.client.Beta.Agents.Update(ctx, agent.ID, anthropic.BetaAgentUpdateParams{Version: anthropic.Int(1), System: anthropic.String("lost")})
	status, _ := catalogStatus(t, err)
	assert.Equal(t, 409, status)

	env, err := b.client.Beta.Environments.New(ctx, anthropic.BetaEnvironmentNewParams{Name: "e"})
	require.NoError(t, err)
	vault, err := a.client.Beta.Vaults.New(ctx, anthropic.BetaVaultNewParams{DisplayName: "v"})
	require.NoError(t, err)
	cred, err := a.client.Beta.Vaults.Credentials.New(ctx, vault.ID, llmCredential("SVC_TOKEN", catalogSecret, "api.example.com"))
	require.NoError(t, err)
	_, ok := b.b.environment(env.ID)
	assert.True(t, ok)
	_, ok = a.b.environment(env.ID)
	assert.True(t, ok, "a resolves the environment created on b")
	creds, found, err := b.b.apiVaultCredentials(vault.ID)
	require.NoError(t, err)
	require.True(t, found)
	require.Len(t, creds, 1)
	assert.Equal(t, catalogSecret, creds[0].Value, "b opens the secret a sealed (one identity)")
	list, err := b.client.Beta.Vaults.Credentials.List(ctx, vault.ID, anthropic.BetaVaultCredentialListParams{})
	require.NoError(t, err)
	require.Len(t, list.Data, 1)
	assert.Equal(t, cred.ID, list.Data[0].ID)
	assert.NotContains(t, list.RawJSON(), catalogSecret)

	// Archived on a: refused for new sessions on b at once.
	_, err = a.client.Beta.Environments.Archive(ctx, env.ID, anthropic.BetaEnvironmentArchiveParams{})
	require.NoError(t, err)
	_, archived, _ := b.b.environmentState(env.ID)
	assert.True(t, archived)

	// A listing's page token from one backend pages on the other (the
	// catalog store's cursor secret).
	for range 2 {
		_, err := b.client.Beta.Vaults.New(ctx, anthropic.BetaVaultNewParams{DisplayName: "more"})
		require.NoError(t, err)
	}
	page, err := a.client.Beta.Vaults.List(ctx, anthropic.BetaVaultListParams{Limit: anthropic.Int(2)})
	require.NoError(t, err)
	require.Len(t, page.Data, 2)
	require.NotEmpty(t, page.NextPage)
	rest, err := b.client.Beta.Vaults.List(ctx, anthropic.BetaVaultListParams{Limit: anthropic.Int(2), Page: anthropic.String(page.NextPage)})
	require.NoError(t, err)
	require.Len(t, rest.Data, 1)
	assert.Equal(t, vault.ID, rest.Data[0].ID, "the oldest vault ends the second page")

	// Neither session file holds a catalog record.
	for _, r := range []*testRig{a, b} {
		own, err := r.ns.Sibling(store.NamespaceCatalog)
		require.NoError(t, err)
		n := 0
		require.NoError(t, own.View(func(tx *store.NamespaceTx) error {
			for _, bucket := range []string{bucketAPIAgents, bucketAPIEnvironments, bucketAPIVaults, bucketAPICredentials} {
				tx.Bucket(bucket).Scan(nil, nil, false, func(_, _ []byte) bool { n++; return true })
			}
			return nil
		}))
		assert.Zero(t, n)
	}
}
