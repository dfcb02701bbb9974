package daemon_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
)

// A vault credential created through the API is a sealed secret like a
// repository token: the key rotation re-seals it, the running backend opens
// it with the new identity, and the retired identity no longer starts the
// daemon. The harness holds only a placeholder; what shows the credential
// was opened is the scoped host receiving the real value through the
// egress proxy (real bubblewrap, projection as in production).
func TestVaultCredentialsThroughKeyRotation(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("bwrap is not installed (Debian package bubblewrap)")
	}
	if _, err := os.Stat("/usr/bin/curl"); err != nil {
		t.Skip("curl is not installed (Debian package curl)")
	}
	const secret = "svc-rot-8ZkQ-never-in-clear"
	var scoped recorder
	scopedAddr := loopbackServer(t, "127.0.0.2", &scoped)
	scopedHost, _, _ := strings.Cut(scopedAddr, ":")
	dir := t.TempDir()
	script := "curl -sS -o /dev/null -w \"code=%{http_code}\\n\" http://" + scopedAddr + "/api -H \"Authorization: Bearer $SVC_TOKEN\"\necho done\n"
	cfg := baseConfig(dir)
	cfg.Backend = "local"
	cfg.Local = daemon.LocalConfig{Sandbox: "bubblewrap",
		Agents:       []daemon.LocalAgent{{ID: "agent_curl", Version: 1, Command: []string{"/bin/sh", "-c", script}}},
		Environments: []daemon.LocalEnvironment{{ID: "env_open", Timeout: 2 * time.Minute}}}
	r := start(t, cfg, daemon.Options{})
	c := r.client()
	ctx := t.Context()
	vault, err := c.Beta.Vaults.New(ctx, anthropic.BetaVaultNewParams{DisplayName: "svc"})
	require.NoError(t, err)
	_, err = c.Beta.Vaults.Credentials.New(ctx, vault.ID, anthropic.BetaVaultCredentialNewParams{
		Auth: anthropic.BetaVaultCredentialNewParamsAuthUnion{OfEnvironmentVariable: &anthropic.BetaManagedAgentsEnvironmentVariableCreateParams{
			SecretName: "SVC_TOKEN", SecretValue: secret,
			Networking: anthropic.BetaManagedAgentsCredentialNetworkingParamsUnion{OfLimited: &anthropic.BetaManagedAgentsLimitedCredentialNetworkingParams{
				AllowedHosts: []string{scopedHost}}}}}})
	require.NoError(t, err)

	identity := filepath.Join(cfg.DataDir, "keys", "identity.age.txt")
	oldFile := filepath.Join(dir, "old-identity.txt")
	require.NoError(t, os.WriteFile(oldFile, mustReadFile(t, identity), 0o600))
	resp, err := socketClient(cfg.Socket).Post("http://s/admin/keys/rotate", "application/json", nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, "%s", body)
	assert.Contains(t, string(body), `"resealed":1`)

	// runOnce runs one turn and returns how many requests the scoped host
	// had received with the real value by the time it ended.
	runOnce := func(c anthropic.Client) int {
		t.Helper()
		s, err := c.Beta.Sessions.New(ctx, anthropic.BetaSessionNewParams{
			Agent:         anthropic.BetaSessionNewParamsAgentUnion{OfString: anthropic.String("agent_curl")},
			EnvironmentID: "env_open", VaultIDs: []string{vault.ID}})
		require.NoError(t, err)
		_, err = c.Beta.Sessions.Events.Send(ctx, s.ID, anthropic.BetaSessionEventSendParams{
			Events: []anthropic.BetaManagedAgentsEventParamsUnion{userMessage("go")}})
		require.NoError(t, err)
		var text string
		require.Eventually(t, func() bool {
			text = ""
			pager := c.Beta.Sessions.Events.ListAutoPaging(context.Background(), s.ID, anthropic.BetaSessionEventListParams{})
			for pager.Next() {
				ev := pager.Current()
				if ev.Type == "agent.message" {
					text += ev.AsAgentMessage().Content[0].Text
				}
				if ev.Type == "session.status_idle" && strings.Contains(text, "done") {
					return true
				}
			}
			return false
		}, 60*time.Second, 50*time.Millisecond)
		require.Contains(t, text, "code=200", "the scoped host answered")
		require.NotContains(t, text, secret)
		return strings.Count(scoped.String(), "Authorization: Bearer "+secret)
	}
	assert.Equal(t, 1, runOnce(c), "the running daemon opens the re-sealed credential and the proxy substitutes it")
	r.stop(t)

	cfgOld := cfg
	cfgOld.IdentityFile = oldFile
	_, err = daemon.New(cfgOld, slog.New(slog.DiscardHandler), daemon.Options{})
	require.Error(t, err, "the retired identity no longer opens the credential")
	r = start(t, cfg, daemon.Options{})
	assert.Equal(t, 2, runOnce(r.client()), "the restarted daemon opens it with the new identity")
	assert.NotContains(t, r.logs.String(), secret)
}

// A backup restored without its identity: the daemon refuses to start on
// the vault credential it cannot open, and forget-unopenable is the way
// out for credentials too (the vault stays; the credential goes).
func TestUnopenableVaultCredentialHasAWayOut(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := baseConfig(dir)
	cfg.Backend = "local"
	cfg.Local = daemon.LocalConfig{Sandbox: "none"}
	r := start(t, cfg, daemon.Options{})
	c := r.client()
	vault, err := c.Beta.Vaults.New(t.Context(), anthropic.BetaVaultNewParams{DisplayName: "svc"})
	require.NoError(t, err)
	cred, err := c.Beta.Vaults.Credentials.New(t.Context(), vault.ID, anthropic.BetaVaultCredentialNewParams{
		Auth: anthropic.BetaVaultCredentialNewParamsAuthUnion{OfEnvironmentVariable: &anthropic.BetaManagedAgentsEnvironmentVariableCreateParams{
			SecretName: "SVC_TOKEN", SecretValue: "lost-with-its-identity",
			Networking: anthropic.BetaManagedAgentsCredentialNetworkingParamsUnion{OfUnrestricted: &anthropic.BetaManagedAgentsUnrestrictedCredentialNetworkingParams{}}}}})
	require.NoError(t, err)
	r.stop(t)

	identity := filepath.Join(cfg.DataDir, "keys", "identity.age.txt")
	require.NoError(t, os.Remove(identity))
	_, err = daemon.New(cfg, slog.New(slog.DiscardHandler), daemon.Options{})
	require.Error(t, err, "a credential no identity opens stops the start, like a token")

	forgotten, err := daemon.ForgetUnopenableOffline(cfg.DataDir, "", nil, false)
	require.NoError(t, err)
	require.Len(t, forgotten, 1)
	assert.Equal(t, daemon.VaultCredentialResource, forgotten[0].ResourceType)
	assert.Equal(t, cred.ID, forgotten[0].URL)

	r = start(t, cfg, daemon.Options{})
	c = r.client()
	_, err = c.Beta.Vaults.Get(t.Context(), vault.ID, anthropic.BetaVaultGetParams{})
	require.NoError(t, err, "the vault stays")
	list, err := c.Beta.Vaults.Credentials.List(t.Context(), vault.ID, anthropic.BetaVaultCredentialListParams{IncludeArchived: anthropic.Bool(true)})
	require.NoError(t, err)
	assert.Empty(t, list.Data)
}
