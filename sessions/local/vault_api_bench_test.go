package local

import (
	"fmt"
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/crypto"
)

// BenchmarkAPIVaultCredentials is what a turn pays to open an API vault's
// credentials (a bbolt read and one age decryption per credential).
func BenchmarkAPIVaultCredentials(b *testing.B) {
	for _, n := range []int{1, 8} {
		b.Run(fmt.Sprintf("credentials=%d", n), func(b *testing.B) {
			k, err := crypto.GenerateKeyring()
			require.NoError(b, err)
			rig := newRig(b, nil, func(c *Config) { c.Sealer = k })
			v, err := rig.client.Beta.Vaults.New(b.Context(), anthropic.BetaVaultNewParams{DisplayName: "bench"})
			require.NoError(b, err)
			for i := range n {
				_, err := rig.client.Beta.Vaults.Credentials.New(b.Context(), v.ID, llmCredential(fmt.Sprintf("VAR_%d", i), "secret-value"))
				require.NoError(b, err)
			}
			b.ResetTimer()
			for b.Loop() {
				creds, _, err := rig.b.apiVaultCredentials(v.ID)
				if err != nil || len(creds) != n {
					b.Fatal(err, len(creds))
				}
			}
		})
	}
}
