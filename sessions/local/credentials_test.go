package local

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/local/projection"
)

// fakeProjector records what the backend registers.
type fakeProjector struct{ bundle string }

func (f fakeProjector) Project(string, *projection.Session) func() { return func() {} }
func (f fakeProjector) TrustBundle() string                        { return f.bundle }

// A session whose vault is projected never runs where the proxy cannot
// stand between the harness and the network: it ends with an error that
// names the key and the way out, and the harness never starts (so it
// never holds the value, real or placeholder).
func TestProjectionFailsClosed(t *testing.T) {
	dir := t.TempDir()
	vaultFile := filepath.Join(dir, "v.env")
	require.NoError(t, os.WriteFile(vaultFile, []byte("TOKEN=projected-secret-value\n"), 0o600))
	marker := filepath.Join(dir, "ran")
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no proxy", func(c *Config) {}, "the daemon has no egress proxy"},
		{"no sandbox", func(c *Config) { c.Projector = fakeProjector{bundle: "/x"} }, "local.sandbox is none"},
		{"unrestricted", func(c *Config) {
			c.Projector = fakeProjector{bundle: "/x"}
			c.Sandbox = bubblewrap(t, dir)
		}, "environment env_test has networking type unrestricted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rig := newRig(t, []Agent{shAgent("agent_p", "touch "+marker+"; echo $TOKEN")}, func(c *Config) {
				c.Vaults = []Vault{{ID: "vlt_p", File: vaultFile}}
				tc.mutate(c)
			})
			id := rig.create("agent_p", func(req *sessions.CreateRequest) { req.VaultIDs = []string{"vlt_p"} })
			rig.waitDone(id)
			_, message := rig.sessionError(id)
			assert.Contains(t, message, tc.want)
			assert.Contains(t, message, "local.vaults[].project")
			assert.NoFileExists(t, marker, "the harness never started")
			assert.NotContains(t, rig.logs.String(), "projected-secret-value")
		})
	}
}

// A vault that opts out is announced at WARN when the backend starts,
// naming its key.
func TestRawVaultIsAnnounced(t *testing.T) {
	rig := newRig(t, nil, func(c *Config) { c.Vaults = []Vault{{ID: "vlt_raw", File: "/dev/null", Raw: true}} })
	assert.Contains(t, rig.logs.String(), "level=WARN")
	assert.Contains(t, rig.logs.String(), "local.vaults[0].project")
}
