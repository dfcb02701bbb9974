package daemon_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
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
// it with the new identity, the retired identity no longer starts the
// daemon, and a session attaching the vault gets the value (a command
// harness prints only its hash).
func TestVaultCredentialsThroughKeyRotation(t *testing.T) {
	t.Parallel()
	const secret = "svc-rot-8ZkQ-never-in-clear"
	dir := t.TempDir()
	harness := filepath.Join(dir, "harness.sh")
	require.NoError(t, os.WriteFile(harness, []byte("#!/bin/sh\nprintf 'hash %s\\n' \"$(printf %s \"$SVC_TOKEN\" | sha256sum | cut -c1-64)\"\n"), 0o755))
	cfg := baseConfig(dir)
	cfg.Backend = "local"
	cfg.Local = daemon.LocalConfig{Sandbox: "none",
		Agents:       []daemon.LocalAgent{{ID: "agent_hash", Version: 1, Command: []string{harness}}},
		Environments: []daemon.LocalEnvironment{{ID: "env_hash"}}}
	r := start(t, cfg, daemon.Options{})
	c := r.client()
	ctx := t.Context()
	vault, err := c.Beta.Vaults.New(ctx, anthropic.BetaVaultNewParams{DisplayName: "svc"})
	require.NoError(t, err)
	_, err = c.Beta.Vaults.Credentials.New(ctx, vault.ID, anthropic.BetaVaultCredentialNewParams{
		Auth: anthropic.BetaVaultCredentialNewParamsAuthUnion{OfEnvironmentVariable: &anthropic.BetaManagedAgentsEnvironmentVariableCreateParams{
			SecretName: "SVC_TOKEN", SecretValue: secret,
			Networking: anthropic.BetaManagedAgentsCredentialNetworkingParamsUnion{OfUnrestricted: &anthropic.BetaManagedAgentsUnrestrictedCredentialNetworkingParams{}}}}})
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

	sum := sha256.Sum256([]byte(secret))
	want := "hash " + hex.EncodeToString(sum[:])
	hashOf := func(c anthropic.Client) string {
		t.Helper()
		s, err := c.Beta.Sessions.New(ctx, anthropic.BetaSessionNewParams{
			Agent:         anthropic.BetaSessionNewParamsAgentUnion{OfString: anthropic.String("agent_hash")},
			EnvironmentID: "env_hash", VaultIDs: []string{vault.ID}})
		require.NoError(t, err)
		_, err = c.Beta.Sessions.Events.Send(ctx, s.ID, anthropic.BetaSessionEventSendParams{
			Events: []anthropic.BetaManagedAgentsEventParamsUnion{userMessage("go")}})
		require.NoError(t, err)
		var text string
		require.Eventually(t, func() bool {
			pager := c.Beta.Sessions.Events.ListAutoPaging(context.Background(), s.ID, anthropic.BetaSessionEventListParams{})
			for pager.Next() {
				ev := pager.Current()
				if ev.Type == "agent.message" {
					text = ev.AsAgentMessage().Content[0].Text
				}
				if ev.Type == "session.status_idle" && text != "" {
					return true
				}
			}
			return false
		}, 30*time.Second, 50*time.Millisecond)
		return strings.TrimSpace(text)
	}
	assert.Equal(t, want, hashOf(c), "the running daemon opens the re-sealed credential")
	r.stop(t)

	cfgOld := cfg
	cfgOld.IdentityFile = oldFile
	_, err = daemon.New(cfgOld, slog.New(slog.DiscardHandler), daemon.Options{})
	require.Error(t, err, "the retired identity no longer opens the credential")
	r = start(t, cfg, daemon.Options{})
	assert.Equal(t, want, hashOf(r.client()))
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
