package local

import (
	"path/filepath"
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/store/storetest"
)

// BenchmarkCatalogResolve is what resolving a session's API catalog costs
// per creation or turn, read afresh from the store every time (nothing is
// cached, so another node's change is seen at once): the latest agent
// version, the environment, and the vault with one credential opened (one
// age decryption). On bbolt the catalog is in the daemon's file; on etcd
// (three embedded members) in the shared store, a round trip per read.
func BenchmarkCatalogResolve(b *testing.B) {
	open := map[string]func(b *testing.B) *store.Store{
		"bbolt": func(b *testing.B) *store.Store {
			st, err := store.Open(filepath.Join(b.TempDir(), "catalog.db"), store.Options{})
			require.NoError(b, err)
			return st
		},
		"etcd": func(b *testing.B) *store.Store {
			c := storetest.Start(b, 3)
			st, err := store.OpenEtcd(store.EtcdOptions{Endpoints: c.Endpoints(), Prefix: storetest.Prefix(b)})
			require.NoError(b, err)
			return st
		},
	}
	for _, engine := range []string{"bbolt", "etcd"} {
		b.Run(engine, func(b *testing.B) {
			st := open[engine](b)
			b.Cleanup(func() { _ = st.Close() })
			catalog, err := st.Namespace(store.NamespaceCatalog)
			require.NoError(b, err)
			k, err := crypto.GenerateKeyring()
			require.NoError(b, err)
			rig := newRig(b, nil, func(c *Config) { c.Sealer, c.Catalog = k, catalog })
			ctx := b.Context()
			agent, err := rig.client.Beta.Agents.New(ctx, anthropic.BetaAgentNewParams{Name: "bench", Model: anthropic.BetaManagedAgentsModelConfigParams{ID: "m"}})
			require.NoError(b, err)
			env, err := rig.client.Beta.Environments.New(ctx, anthropic.BetaEnvironmentNewParams{Name: "bench"})
			require.NoError(b, err)
			v, err := rig.client.Beta.Vaults.New(ctx, anthropic.BetaVaultNewParams{DisplayName: "bench"})
			require.NoError(b, err)
			_, err = rig.client.Beta.Vaults.Credentials.New(ctx, v.ID, llmCredential("VAR", "secret-value"))
			require.NoError(b, err)
			b.ResetTimer()
			for b.Loop() {
				if _, err := rig.b.ResolveAgent(ctx, agent.ID, 0); err != nil {
					b.Fatal(err)
				}
				if _, _, ok := rig.b.environmentState(env.ID); !ok {
					b.Fatal("environment")
				}
				if creds, _, err := rig.b.apiVaultCredentials(v.ID); err != nil || len(creds) != 1 {
					b.Fatal(err, len(creds))
				}
			}
		})
	}
}
