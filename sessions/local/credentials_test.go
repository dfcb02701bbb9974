package local

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/packages/param"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/local/projection"
)

// fakeProjector records what the backend registers.
type fakeProjector struct{ bundle string }

func (f fakeProjector) Project(string, *projection.Session) func() { return func() {} }
func (f fakeProjector) TrustBundle() string                        { return f.bundle }

// A session whose vault is projected is refused where the proxy cannot
// stand between the harness and the network: sessions.create answers 400
// and a deployment run's creation a session_creation_rejected run error,
// both naming vault_ids[i] and the way out (local.sandbox, project: false);
// the harness never starts (so it never holds the value, real or
// placeholder). An unrestricted environment under bubblewrap is no reason
// to refuse any more: its turns go through the proxy.
func TestProjectionRefusedAtCreation(t *testing.T) {
	dir := t.TempDir()
	vaultFile := filepath.Join(dir, "v.env")
	require.NoError(t, os.WriteFile(vaultFile, []byte("TOKEN=projected-secret-value\n"), 0o600))
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no proxy", func(c *Config) {}, "the daemon has no egress proxy"},
		{"no sandbox", func(c *Config) { c.Projector = fakeProjector{bundle: "/x"} }, "local.sandbox is none: use bubblewrap (local.sandbox: auto)"},
		{"no CA", func(c *Config) {
			c.Projector = fakeProjector{}
			c.Sandbox = bubblewrap(t, dir)
		}, "no CA for HTTPS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rig := newRig(t, []Agent{shAgent("agent_p", "echo $TOKEN")}, func(c *Config) {
				c.Vaults = []Vault{{ID: "vlt_ok", File: vaultFile, Raw: true}, {ID: "vlt_p", File: vaultFile}}
				tc.mutate(c)
			})
			// A deployment run.
			_, err := rig.b.CreateSession(t.Context(), rig.request("agent_p", func(req *sessions.CreateRequest) {
				req.VaultIDs = []string{"vlt_ok", "vlt_p"}
			}))
			var re *sessions.RunError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, sessions.ErrSessionCreationRejected, re.Type)
			for _, want := range []string{"vault_ids[1]", `"vlt_p"`, tc.want, "local.vaults[].project"} {
				assert.Contains(t, re.Message, want)
			}
			// A definition's references (deployments.create).
			err = rig.b.CheckReferences(t.Context(), sessions.References{Agent: sessions.AgentRef{ID: "agent_p", Version: 1},
				EnvironmentID: testEnvironment, VaultIDs: []string{"vlt_p"}})
			var fe *sessions.FieldError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, "vault_ids[0]", fe.Field)
			// sessions.create through the API.
			_, err = rig.client.Beta.Sessions.New(t.Context(), anthropic.BetaSessionNewParams{
				Agent:         anthropic.BetaSessionNewParamsAgentUnion{OfString: param.NewOpt("agent_p")},
				EnvironmentID: testEnvironment, VaultIDs: []string{"vlt_ok", "vlt_p"}})
			var apiErr *anthropic.Error
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
			for _, want := range []string{"vault_ids[1]", tc.want, "project: false"} {
				assert.Contains(t, apiErr.Error(), want)
			}
			// The vault that opted out alone is accepted.
			rec := rig.waitDone(rig.create("agent_p", func(req *sessions.CreateRequest) { req.VaultIDs = []string{"vlt_ok"} }))
			assert.Equal(t, statusIdle, rec.Status)
			assert.NotContains(t, rig.logs.String(), "projected-secret-value")
		})
	}
}

// The check before each turn stays as a backstop: a session created while
// projection worked, whose daemon then cannot project (the proxy gone),
// ends its next turn with an error naming the way out, and the harness
// never starts.
func TestProjectionFailsClosedAtTurn(t *testing.T) {
	dir := t.TempDir()
	vaultFile := filepath.Join(dir, "v.env")
	require.NoError(t, os.WriteFile(vaultFile, []byte("TOKEN=projected-secret-value\n"), 0o600))
	rig := newRig(t, []Agent{shAgent("agent_p", "echo started $TOKEN")}, func(c *Config) {
		c.Vaults = []Vault{{ID: "vlt_p", File: vaultFile}}
		c.Projector = fakeProjector{bundle: "/x"}
		c.Sandbox = bubblewrap(t, dir)
	})
	id := rig.create("agent_p", func(req *sessions.CreateRequest) {
		req.VaultIDs = []string{"vlt_p"}
		req.InitialEvents = nil
	})
	rig.waitDone(id)
	// No turn runs now: the runner that will read it starts after this.
	rig.b.cfg.Projector = nil
	_, err := rig.b.sendEvents(id, []inputEvent{{json: userMessage("go")}})
	require.NoError(t, err)
	rig.waitForEvent(id, func(ev storedEvent) bool { return ev.Type == eventSessionError })
	rig.waitDone(id)
	_, message := rig.sessionError(id)
	assert.Contains(t, message, "the daemon has no egress proxy")
	assert.Contains(t, message, "local.vaults[].project")
	assert.Empty(t, rig.texts(id), "the harness never started")
	assert.NotContains(t, rig.logs.String(), "projected-secret-value")
}

// A vault that opts out is announced at WARN when the backend starts,
// naming its key.
func TestRawVaultIsAnnounced(t *testing.T) {
	rig := newRig(t, nil, func(c *Config) { c.Vaults = []Vault{{ID: "vlt_raw", File: "/dev/null", Raw: true}} })
	assert.Contains(t, rig.logs.String(), "level=WARN")
	assert.Contains(t, rig.logs.String(), "local.vaults[0].project")
}
