package local

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/packages/respjson"
	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// turnScript is a multi-turn harness: it reports its turn and prompt, keeps
// a state file in the workspace across turns, and on the prompt "wait"
// blocks on a fifo (until the test writes to it) or on "block" sleeps
// until it is interrupted.
func turnScript(fifo string) string {
	return `echo "$SANDBOX0D_TURN" >> state.txt
echo "turn $SANDBOX0D_TURN: $SANDBOX0D_PROMPT (state $(tr '\n' , < state.txt))"
case "$SANDBOX0D_PROMPT" in
wait) read line < "` + fifo + `"; echo "released";;
block) echo "ready $$"; sleep 1000 & wait;;
esac`
}

func textEvent(text string) anthropic.BetaManagedAgentsEventParamsUnion {
	return anthropic.BetaManagedAgentsEventParamsUnion{OfUserMessage: &anthropic.BetaManagedAgentsUserMessageEventParams{
		Content: []anthropic.BetaManagedAgentsUserMessageEventParamsContentUnion{{
			OfText: &anthropic.BetaManagedAgentsTextBlockParam{Text: text}}}}}
}

func (r *testRig) send(id string, events ...anthropic.BetaManagedAgentsEventParamsUnion) *anthropic.BetaManagedAgentsSendSessionEvents {
	r.t.Helper()
	sent, err := r.client.Beta.Sessions.Events.Send(r.t.Context(), id, anthropic.BetaSessionEventSendParams{Events: events})
	require.NoError(r.t, err)
	return sent
}

func (r *testRig) status(id string) anthropic.BetaManagedAgentsSessionStatus {
	r.t.Helper()
	sess, err := r.client.Beta.Sessions.Get(r.t.Context(), id, anthropic.BetaSessionGetParams{})
	require.NoError(r.t, err)
	return sess.Status
}

// TestConversation creates a session directly (idle, no events), sends a
// message (running, then idle), sends two more while a turn runs (queued,
// run in order in later turns), interrupts a long turn (idle, not
// terminated), and runs one more turn: all through the official SDK, with
// a real harness process per turn.
func TestConversation(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "release")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	rig := newRig(t, []Agent{shAgent("agent_turns", turnScript(fifo))}, nil)
	ctx := t.Context()

	sess, err := rig.client.Beta.Sessions.New(ctx, anthropic.BetaSessionNewParams{
		Agent:         anthropic.BetaSessionNewParamsAgentUnion{OfString: anthropic.String("agent_turns")},
		EnvironmentID: testEnvironment,
		Title:         anthropic.String("a conversation"),
		Metadata:      map[string]string{"team": "infra"},
	})
	require.NoError(t, err)
	id := sess.ID
	assert.Equal(t, anthropic.BetaManagedAgentsSessionStatusIdle, sess.Status, "no initial events: it waits")
	assert.Equal(t, "a conversation", sess.Title)
	assert.Empty(t, sess.DeploymentID)
	assert.Empty(t, rig.types(id))

	// One message: running at once (the send itself says so), then idle.
	sent := rig.send(id, textEvent("first"))
	require.Len(t, sent.Data, 1)
	assert.Equal(t, "user.message", sent.Data[0].Type)
	assert.NotEmpty(t, sent.Data[0].ID)
	assert.False(t, sent.Data[0].ProcessedAt.IsZero())
	assert.Contains(t, []anthropic.BetaManagedAgentsSessionStatus{"running", "idle"}, rig.status(id))
	assert.Equal(t, statusIdle, rig.waitDone(id).Status)
	assert.Equal(t, []string{"turn 1: first (state 1,)"}, rig.texts(id))

	// A turn that waits; two messages sent meanwhile queue behind it.
	rig.send(id, textEvent("wait"))
	rig.waitForText(id, "turn 2: wait")
	rig.send(id, textEvent("second"))
	rig.send(id, textEvent("third"))
	assert.Equal(t, anthropic.BetaManagedAgentsSessionStatusRunning, rig.status(id))
	require.NoError(t, os.WriteFile(fifo, []byte("go\n"), 0o600))
	assert.Equal(t, statusIdle, rig.waitDone(id).Status)
	assert.Equal(t, []string{"turn 1: first (state 1,)", "turn 2: wait (state 1,2,)", "released",
		"turn 3: second (state 1,2,3,)"}, rig.texts(id)[:4])
	// Both queued messages started the next turn together, in order.
	var turn3Stdin []string
	for _, ev := range rig.events(id) {
		if ev.Type == eventUserMessage {
			turn3Stdin = append(turn3Stdin, eventText(ev.JSON))
		}
	}
	assert.Equal(t, []string{"first", "wait", "second", "third"}, turn3Stdin)

	// A long turn, interrupted: idle (not terminated), no session.error.
	rig.send(id, textEvent("block"))
	rig.waitForText(id, "ready ")
	rig.send(id, anthropic.BetaManagedAgentsEventParamsUnion{OfUserInterrupt: &anthropic.BetaManagedAgentsUserInterruptEventParams{}})
	rec := rig.waitDone(id)
	assert.Equal(t, statusIdle, rec.Status)
	for _, ev := range rig.events(id) {
		assert.NotEqual(t, eventSessionError, ev.Type)
	}

	// Title and metadata can be updated (a null-free patch here: one key
	// replaced, one added).
	updated, err := rig.client.Beta.Sessions.Update(ctx, id, anthropic.BetaSessionUpdateParams{
		Title:    anthropic.String("renamed"),
		Metadata: map[string]string{"team": "platform", "tier": "gold"},
	})
	require.NoError(t, err)
	assert.Equal(t, "renamed", updated.Title)
	assert.Equal(t, map[string]string{"team": "platform", "tier": "gold"}, updated.Metadata)

	// And one more turn works, in the same workspace.
	rig.send(id, textEvent("last"))
	rig.waitDone(id)
	texts := rig.texts(id)
	assert.Equal(t, "turn 5: last (state 1,2,3,4,5,)", texts[len(texts)-1])
	types := rig.types(id)
	assert.Equal(t, eventStatusIdle, types[len(types)-1])
	assert.Equal(t, 5, mustGet(t, rig, id).Turns)
}

// TestDeploymentSessionContinues: a deployment run's session is turn 1; a
// second message runs turn 2 in the same workspace, where the harness finds
// its own state file.
func TestDeploymentSessionContinues(t *testing.T) {
	rig := newRig(t, []Agent{shAgent("agent_turns", turnScript("/nonexistent"))}, nil)
	id := rig.create("agent_turns", nil)
	assert.Equal(t, statusIdle, rig.waitDone(id).Status)
	rig.send(id, textEvent("and then?"))
	rig.waitDone(id)
	assert.Equal(t, []string{"turn 1: hello from the deployment (state 1,)", "turn 2: and then? (state 1,2,)"}, rig.texts(id))
	sess, err := rig.client.Beta.Sessions.Get(t.Context(), id, anthropic.BetaSessionGetParams{})
	require.NoError(t, err)
	assert.Equal(t, "depl_test", sess.DeploymentID)
}

// TestSessionObjectHasEveryField decodes the session object into the SDK's
// struct for a running, an idle and a terminated session: every field the
// SDK declares is present and no field is unknown to it.
func TestSessionObjectHasEveryField(t *testing.T) {
	rig := newRig(t, []Agent{
		{ID: "agent_block", Version: 1, Name: "Blocker", Model: "claude-test", System: "be quick",
			Command: []string{"/bin/sh", "-c", blockingScript}},
		shAgent("agent_fail", "exit 2"), shAgent("agent_quick", "echo hi"),
	}, func(c *Config) { c.Vaults = []Vault{{ID: "vlt_a", File: "/dev/null"}} })
	require.NoError(t, os.WriteFile(filepath.Join(rig.cfg.FilesDir, "f.txt"), []byte("x"), 0o600))
	running := rig.create("agent_block", func(req *sessions.CreateRequest) {
		req.Resources = []sessions.Resource{{Type: "file", FileID: "f.txt"}}
		req.VaultIDs = []string{"vlt_a"}
	})
	rig.waitForText(running, "ready ")
	idle := rig.create("agent_quick", nil)
	rig.waitDone(idle)
	terminated := rig.create("agent_fail", nil)
	rig.waitDone(terminated)

	for id, want := range map[string]anthropic.BetaManagedAgentsSessionStatus{
		running: "running", idle: "idle", terminated: "terminated"} {
		sess, err := rig.client.Beta.Sessions.Get(t.Context(), id, anthropic.BetaSessionGetParams{})
		require.NoError(t, err)
		assert.Equal(t, want, sess.Status)
		checkEveryField(t, "session", sess.JSON)
		checkEveryField(t, "session.agent", sess.Agent.JSON)
		checkEveryField(t, "session.stats", sess.Stats.JSON)
		checkEveryField(t, "session.usage", sess.Usage.JSON)
		checkEveryField(t, "session.usage.cache_creation", sess.Usage.CacheCreation.JSON)
		for _, res := range sess.Resources {
			require.Equal(t, "file", res.Type)
			checkEveryField(t, "session.resources[]", res.AsFile().JSON)
		}
		assert.NotNil(t, sess.OutcomeEvaluations)
		assert.Equal(t, id, sess.ID)
	}
	sess, err := rig.client.Beta.Sessions.Get(t.Context(), running, anthropic.BetaSessionGetParams{})
	require.NoError(t, err)
	assert.Equal(t, "Blocker", sess.Agent.Name)
	assert.Equal(t, "be quick", sess.Agent.System)
	assert.Equal(t, anthropic.BetaManagedAgentsModel("claude-test"), sess.Agent.Model.ID)
	assert.Equal(t, []string{"vlt_a"}, sess.VaultIDs)
	assert.Len(t, sess.Resources, 1)

	// The list has the same shape.
	page, err := rig.client.Beta.Sessions.List(t.Context(), anthropic.BetaSessionListParams{})
	require.NoError(t, err)
	require.Len(t, page.Data, 3)
	for _, s := range page.Data {
		checkEveryField(t, "sessions[]", s.JSON)
	}
}

// checkEveryField asserts that a decoded SDK object (its JSON metadata
// struct) had every declared field present, and no extra ones.
func checkEveryField(t *testing.T, what string, meta any) {
	t.Helper()
	v := reflect.ValueOf(meta)
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		if !f.IsExported() || f.Name == "ExtraFields" {
			continue
		}
		field, ok := v.Field(i).Interface().(respjson.Field)
		if !ok {
			continue
		}
		assert.NotEqual(t, respjson.Omitted, field.Raw(), "%s: field %s is missing", what, f.Name)
	}
	if extra := v.FieldByName("ExtraFields"); extra.IsValid() {
		assert.Empty(t, extra.Interface().(map[string]respjson.Field), "%s: fields the SDK does not know", what)
	}
}

// TestCatalogReadOnly: agents, environments and vaults of the config
// through the SDK; created_at is stable across a restart; writes are a 409
// that says where they are declared; vault values never appear.
func TestCatalogReadOnly(t *testing.T) {
	dir := t.TempDir()
	vaultFile := filepath.Join(dir, "v.env")
	require.NoError(t, os.WriteFile(vaultFile, []byte("SECRET=hunter2\n"), 0o600))
	rig := newRig(t, []Agent{
		{ID: "agent_a", Version: 1, Name: "A", Command: []string{"true"}},
		{ID: "agent_a", Version: 2, Name: "A2", Model: "claude-x", Description: "second", Command: []string{"true"}},
		shAgent("agent_b", "true"),
	}, func(c *Config) { c.Vaults = []Vault{{ID: "vlt_a", File: vaultFile}} })
	ctx := t.Context()

	agents, err := rig.client.Beta.Agents.List(ctx, anthropic.BetaAgentListParams{})
	require.NoError(t, err)
	require.Len(t, agents.Data, 2)
	// Newest first; config objects first seen together tie, by id descending.
	assert.Equal(t, "agent_b", agents.Data[0].ID)
	agents.Data[0], agents.Data[1] = agents.Data[1], agents.Data[0]
	assert.Equal(t, "agent_a", agents.Data[0].ID)
	assert.Equal(t, int64(2), agents.Data[0].Version, "the list shows the latest version")
	assert.Equal(t, "A2", agents.Data[0].Name)
	for _, a := range agents.Data {
		checkEveryField(t, "agent", a.JSON)
	}
	a1, err := rig.client.Beta.Agents.Get(ctx, "agent_a", anthropic.BetaAgentGetParams{Version: anthropic.Int(1)})
	require.NoError(t, err)
	assert.Equal(t, "A", a1.Name)
	// Unset description and system are null (the types' "not set"); a
	// command agent without a model shows "" (unknown), never a made-up id.
	assert.Equal(t, "null", a1.JSON.Description.Raw())
	assert.Equal(t, "null", a1.JSON.System.Raw())
	assert.Equal(t, `""`, a1.Model.JSON.ID.Raw())
	assert.Equal(t, "second", agents.Data[0].Description)
	assert.Equal(t, "claude-x", string(agents.Data[0].Model.ID))

	envs, err := rig.client.Beta.Environments.List(ctx, anthropic.BetaEnvironmentListParams{})
	require.NoError(t, err)
	require.Len(t, envs.Data, 1)
	checkEveryField(t, "environment", envs.Data[0].JSON)
	env, err := rig.client.Beta.Environments.Get(ctx, testEnvironment, anthropic.BetaEnvironmentGetParams{})
	require.NoError(t, err)
	assert.Equal(t, "self_hosted", env.Config.Type)
	assert.Equal(t, "null", env.JSON.Description.Raw(), "environment.description: null when unset")

	vaults, err := rig.client.Beta.Vaults.List(ctx, anthropic.BetaVaultListParams{})
	require.NoError(t, err)
	require.Len(t, vaults.Data, 1)
	checkEveryField(t, "vault", vaults.Data[0].JSON)
	assert.NotContains(t, vaults.Data[0].RawJSON(), "hunter2")
	vault, err := rig.client.Beta.Vaults.Get(ctx, "vlt_a", anthropic.BetaVaultGetParams{})
	require.NoError(t, err)
	assert.NotContains(t, vault.RawJSON(), "hunter2")
	assert.NotContains(t, vault.RawJSON(), "SECRET")

	// Config entries say so in their metadata; writes are a 409 naming the
	// config key that declares them.
	assert.Equal(t, "config", agents.Data[0].Metadata["sandbox0d_source"])
	assert.Equal(t, "local.agents", agents.Data[0].Metadata["sandbox0d_config_key"])
	assert.Equal(t, "local.vaults", vault.Metadata["sandbox0d_config_key"])
	var apiErr *anthropic.Error
	_, err = rig.client.Beta.Agents.Update(ctx, "agent_a", anthropic.BetaAgentUpdateParams{Name: anthropic.String("x")})
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusConflict, apiErr.StatusCode)
	assert.Contains(t, apiErr.Error(), "local.agents")
	_, err = rig.client.Beta.Agents.Archive(ctx, "agent_a", anthropic.BetaAgentArchiveParams{})
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusConflict, apiErr.StatusCode)
	_, err = rig.client.Beta.Environments.Update(ctx, testEnvironment, anthropic.BetaEnvironmentUpdateParams{Name: anthropic.String("x")})
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusConflict, apiErr.StatusCode)
	assert.Contains(t, apiErr.Error(), "local.environments")
	_, err = rig.client.Beta.Environments.Delete(ctx, testEnvironment, anthropic.BetaEnvironmentDeleteParams{})
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusConflict, apiErr.StatusCode)
	_, err = rig.client.Beta.Vaults.Delete(ctx, "vlt_a", anthropic.BetaVaultDeleteParams{})
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusConflict, apiErr.StatusCode)
	assert.Contains(t, apiErr.Error(), "local.vaults")
	_, err = rig.client.Beta.Vaults.Credentials.List(ctx, "vlt_a", anthropic.BetaVaultCredentialListParams{})
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusConflict, apiErr.StatusCode)
	assert.Contains(t, apiErr.Error(), "local.vaults")

	// created_at is when the database first saw the object: a later backend
	// on the same file reports the same instant.
	b2, err := New(rig.ns, rig.cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b2.Close(t.Context()) })
	assert.Equal(t, rig.b.firstSeen, b2.firstSeen)
	raw, _ := json.Marshal(b2.configVaultObject(b2.vaults["vlt_a"]))
	assert.True(t, strings.Contains(string(raw), vaults.Data[0].CreatedAt.UTC().Format("2006-01-02T15:04:05")))
}

// TestEchoHarnessMultiTurn runs the example harness for two turns: the
// second sees SANDBOX0D_TURN=2 and the state the first left in the
// workspace.
func TestEchoHarnessMultiTurn(t *testing.T) {
	script, err := filepath.Abs("../../examples/echo-harness.sh")
	require.NoError(t, err)
	rig := newRig(t, []Agent{{ID: "agent_echo", Version: 1, Command: []string{"/bin/sh", script}}}, nil)
	id := rig.create("agent_echo", nil)
	rig.waitDone(id)
	rig.send(id, textEvent("once more"))
	rig.waitDone(id)
	texts := rig.texts(id)
	require.Len(t, texts, 10)
	assert.Equal(t, "turn 2: received 1 event(s), 1 user message(s); 1 earlier turn(s) here", texts[6])
	assert.Equal(t, "prompt: once more", texts[7])
}
