package daemon_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/anthropics/anthropic-sdk-go/v2/packages/param"
	"github.com/spf13/viper"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/internal/fakemessages"
)

// These tests run deployments and sessions of a claude-code agent through
// the daemon with the official Go SDK: the real Claude Code CLI pinned in
// testdata/claude-code (skipped when it is not installed; CI installs it),
// inside the sandbox (bubblewrap where it works), against a scripted fake
// Messages API on loopback that the environment points it at (ANTHROPIC_BASE_URL)
// and that the projected LLM vault is scoped to.

const (
	ccModel = "claude-sonnet-5-5"
	ccKey   = "sk-ant-e2e-Vb93secret"
)

type ccRig struct {
	r         *running
	c         anthropic.Client
	fake      *fakemessages.Server
	cfg       daemon.Config
	workspace func(id string) string
}

func claudeCodeBinary(t *testing.T) string {
	t.Helper()
	path, err := filepath.Abs("../testdata/claude-code/node_modules/.bin/claude")
	require.NoError(t, err)
	if _, err := os.Stat(path); err != nil {
		t.Skip("Claude Code is not installed: run npm ci --prefix testdata/claude-code")
	}
	return path
}

func newCCRig(t *testing.T, script ...fakemessages.Reply) *ccRig {
	bin := claudeCodeBinary(t)
	fake := fakemessages.New(t, fakemessages.Options{APIKey: ccKey, Model: ccModel, Script: script})
	dir := t.TempDir()
	llm := filepath.Join(dir, "anthropic.env")
	require.NoError(t, os.WriteFile(llm, []byte("ANTHROPIC_API_KEY="+ccKey+"\n"), 0o600))
	other := filepath.Join(dir, "other.env")
	require.NoError(t, os.WriteFile(other, []byte("SOME_TOKEN=not-an-llm-key\n"), 0o600))
	fakeHost, _ := hostPort(t, fake.URL)
	cfg := baseConfig(dir)
	cfg.Backend = "local"
	cfg.Local = daemon.LocalConfig{
		Sandbox: "auto",
		Agents: []daemon.LocalAgent{{ID: "agent_cc", Version: 1, Harness: "claude-code", Model: ccModel,
			System: "You are a careful test agent.", ClaudeBinary: bin}},
		// An unrestricted environment, as the official quickstart's: the
		// projected LLM vault puts the CLI behind the egress proxy, which
		// substitutes the key on requests to the fake (on loopback, so
		// the vault names it). The base URL is no secret: it belongs in the
		// environment (a projected vault's every value is a placeholder).
		Environments: []daemon.LocalEnvironment{{ID: "env_cc", Timeout: 2 * time.Minute,
			Env: map[string]string{"ANTHROPIC_BASE_URL": fake.URL}}},
		Vaults: []daemon.LocalVault{{ID: "vault_llm", File: llm, Hosts: []string{fakeHost}}, {ID: "vault_other", File: other}},
	}
	r := start(t, cfg, daemon.Options{})
	if strings.Contains(r.logs.String(), "bubblewrap does not work") {
		t.Log("bubblewrap does not work here: the CLI runs unconfined")
	}
	return &ccRig{r: r, c: r.client(), fake: fake, cfg: cfg,
		workspace: func(id string) string { return filepath.Join(cfg.DataDir, "workspaces", id) }}
}

func userMessage(text string) anthropic.BetaManagedAgentsEventParamsUnion {
	return anthropic.BetaManagedAgentsEventParamsUnion{OfUserMessage: &anthropic.BetaManagedAgentsUserMessageEventParams{
		Content: []anthropic.BetaManagedAgentsUserMessageEventParamsContentUnion{{OfText: &anthropic.BetaManagedAgentsTextBlockParam{Text: text}}}}}
}

// events lists every event of a session.
func (rig *ccRig) events(t *testing.T, id string) []anthropic.BetaManagedAgentsSessionEventUnion {
	t.Helper()
	var out []anthropic.BetaManagedAgentsSessionEventUnion
	pager := rig.c.Beta.Sessions.Events.ListAutoPaging(context.Background(), id, anthropic.BetaSessionEventListParams{})
	for pager.Next() {
		out = append(out, pager.Current())
	}
	require.NoError(t, pager.Err())
	return out
}

// awaitStop follows the session's event stream until it has stopped n
// times (idle or terminated, counting from its first event: Last-Event-ID
// 0 replays, the stream is a live tail otherwise) and returns
// the last stop event.
func (rig *ccRig) awaitStop(t *testing.T, id string, n int) anthropic.BetaManagedAgentsStreamSessionEventsUnion {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stream := rig.c.Beta.Sessions.Events.StreamEvents(ctx, id, anthropic.BetaSessionEventStreamParams{}, option.WithHeader("Last-Event-ID", "0"))
	defer stream.Close()
	seen := 0
	for stream.Next() {
		ev := stream.Current()
		if ev.Type == "session.status_idle" || ev.Type == "session.status_terminated" {
			if seen++; seen == n {
				return ev
			}
		}
	}
	t.Fatalf("the stream of %s ended after %d stops (want %d): %v", id, seen, n, stream.Err())
	return anthropic.BetaManagedAgentsStreamSessionEventsUnion{}
}

func types(evs []anthropic.BetaManagedAgentsSessionEventUnion) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Type)
	}
	return out
}

func after(evs []anthropic.BetaManagedAgentsSessionEventUnion, from int, typ string) int {
	for i := from; i < len(evs); i++ {
		if evs[i].Type == typ {
			return i
		}
	}
	return -1
}

// noSecret checks the key is nowhere the daemon writes: events, logs, the
// database and every other file of its data dir besides the workspaces'
// own (where the agent could copy it; none of the tests does).
func (rig *ccRig) noSecret(t *testing.T, ids ...string) {
	t.Helper()
	for _, id := range ids {
		for _, ev := range rig.events(t, id) {
			assert.NotContains(t, ev.RawJSON(), ccKey, "event %s", ev.Type)
		}
	}
	assert.NotContains(t, rig.r.logs.String(), ccKey, "daemon log")
	_ = filepath.WalkDir(rig.cfg.DataDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err == nil && strings.Contains(string(data), ccKey) {
			t.Errorf("the API key is in %s", path)
		}
		return nil
	})
	assert.Empty(t, rig.fake.Violations(), "requests the fake Messages API refused")
}

// A deployment's session: the model runs Bash to write a file; a second
// message continues the conversation.
func TestClaudeCodeDeploymentWritesFileThenContinues(t *testing.T) {
	t.Parallel()
	rig := newCCRig(t,
		fakemessages.Reply{Blocks: []fakemessages.Block{fakemessages.Text("I'll write it."),
			fakemessages.ToolUse("Bash", map[string]any{"command": "printf 'digest ready' > digest.txt", "description": "write"})},
			Usage: &fakemessages.Usage{InputTokens: 900, OutputTokens: 60, CacheReadInputTokens: 20}},
		fakemessages.Reply{Blocks: []fakemessages.Block{fakemessages.Text("digest.txt is written.")}},
		fakemessages.Reply{Blocks: []fakemessages.Block{fakemessages.Text("It says: digest ready.")}},
	)
	ctx := context.Background()
	params := createParams("daily-digest")
	params.Agent = anthropic.BetaDeploymentNewParamsAgentUnion{OfString: param.NewOpt("agent_cc")}
	params.EnvironmentID = "env_cc"
	params.Resources = nil
	params.VaultIDs = []string{"vault_llm"}
	params.InitialEvents[0].OfUserMessage.Content[0].OfText.Text = "Write today's digest to digest.txt"
	params.Budget = anthropic.BetaManagedAgentsBudgetLimitParam{MaxListCost: anthropic.BetaMonetaryAmountParam{Amount: "500", Currency: "USD"}}
	dep, err := rig.c.Beta.Deployments.New(ctx, params)
	require.NoError(t, err)
	run, err := rig.c.Beta.Deployments.Run(ctx, dep.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	require.NotEmpty(t, run.SessionID, "run error: %+v", run.Error)
	id := run.SessionID

	idle := rig.awaitStop(t, id, 1)
	require.Equal(t, "session.status_idle", idle.Type)
	assert.Equal(t, "end_turn", idle.StopReason.Type)
	data, err := os.ReadFile(filepath.Join(rig.workspace(id), "digest.txt"))
	require.NoError(t, err)
	assert.Equal(t, "digest ready", string(data))

	evs := rig.events(t, id)
	use := after(evs, 0, "agent.tool_use")
	result := after(evs, use+1, "agent.tool_result")
	msg := after(evs, result+1, "agent.message")
	require.True(t, use >= 0 && result > use && msg > result, "events %v", types(evs))
	assert.Equal(t, "Bash", evs[use].Name)
	assert.Equal(t, evs[use].ID, evs[result].ToolUseID)
	assert.Equal(t, "digest.txt is written.", evs[msg].AsAgentMessage().Content[0].Text)
	assert.Positive(t, after(evs, 0, "span.model_request_end"))

	sess, err := rig.c.Beta.Sessions.Get(ctx, id, anthropic.BetaSessionGetParams{})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, sess.Usage.InputTokens, int64(900))
	assert.GreaterOrEqual(t, sess.Usage.OutputTokens, int64(60))
	assert.Equal(t, int64(20), sess.Usage.CacheReadInputTokens) // the second reply has none
	assert.Equal(t, "USD", string(sess.Usage.ListCost.Currency))
	assert.Equal(t, "500", sess.Budget.MaxListCost.Amount, "the deployment's budget is the session's")
	assert.Equal(t, ccModel, sess.Agent.Model.ID)
	assert.Equal(t, "You are a careful test agent.", sess.Agent.System)

	agent, err := rig.c.Beta.Agents.Get(ctx, "agent_cc", anthropic.BetaAgentGetParams{})
	require.NoError(t, err)
	assert.Equal(t, ccModel, agent.Model.ID)
	assert.Equal(t, "You are a careful test agent.", agent.System)

	_, err = rig.c.Beta.Sessions.Events.Send(ctx, id, anthropic.BetaSessionEventSendParams{
		Events: []anthropic.BetaManagedAgentsEventParamsUnion{userMessage("What does it say?")}})
	require.NoError(t, err)
	idle = rig.awaitStop(t, id, 2)
	assert.Equal(t, "end_turn", idle.StopReason.Type)
	calls := rig.fake.ModelCalls()
	require.Len(t, calls, 3)
	var history []string
	for _, m := range calls[2].Messages {
		history = append(history, m.Text())
	}
	joined := strings.Join(history, "\n")
	for _, want := range []string{"Write today's digest to digest.txt", "digest.txt is written.", "What does it say?"} {
		assert.Contains(t, joined, want)
	}
	rig.noSecret(t, id)
}

// A session created directly, interrupted mid-turn, then resumed.
func TestClaudeCodeSessionInterruptThenResume(t *testing.T) {
	t.Parallel()
	stall, started := make(chan struct{}), make(chan struct{})
	defer close(stall)
	rig := newCCRig(t,
		fakemessages.Reply{Blocks: []fakemessages.Block{fakemessages.Text("This will take a while")}, Stall: stall, Started: started},
		fakemessages.Reply{Blocks: []fakemessages.Block{fakemessages.Text("Picking up where we left off.")}},
	)
	ctx := context.Background()
	sess, err := rig.c.Beta.Sessions.New(ctx, anthropic.BetaSessionNewParams{
		Agent:         anthropic.BetaSessionNewParamsAgentUnion{OfString: param.NewOpt("agent_cc")},
		EnvironmentID: "env_cc", VaultIDs: []string{"vault_llm"},
	})
	require.NoError(t, err)
	_, err = rig.c.Beta.Sessions.Events.Send(ctx, sess.ID, anthropic.BetaSessionEventSendParams{
		Events: []anthropic.BetaManagedAgentsEventParamsUnion{userMessage("Explain everything")}})
	require.NoError(t, err)
	select {
	case <-started:
	case <-time.After(2 * time.Minute):
		t.Fatal("Claude Code never called the model")
	}
	_, err = rig.c.Beta.Sessions.Events.Send(ctx, sess.ID, anthropic.BetaSessionEventSendParams{
		Events: []anthropic.BetaManagedAgentsEventParamsUnion{{OfUserInterrupt: &anthropic.BetaManagedAgentsUserInterruptEventParams{}}}})
	require.NoError(t, err)
	stop := rig.awaitStop(t, sess.ID, 1)
	require.Equal(t, "session.status_idle", stop.Type, "an interrupt ends the turn, not the session")
	assert.Equal(t, "null", stop.AsSessionStatusIdle().JSON.StopDetails.Raw(), "an interrupt's idle: stop_details null")

	_, err = rig.c.Beta.Sessions.Events.Send(ctx, sess.ID, anthropic.BetaSessionEventSendParams{
		Events: []anthropic.BetaManagedAgentsEventParamsUnion{userMessage("Go on")}})
	require.NoError(t, err)
	stop = rig.awaitStop(t, sess.ID, 2)
	assert.Equal(t, "end_turn", stop.StopReason.Type)
	calls := rig.fake.ModelCalls()
	last := calls[len(calls)-1]
	var texts []string
	for _, m := range last.Messages {
		texts = append(texts, m.Text())
	}
	assert.Contains(t, strings.Join(texts, "\n"), "Explain everything", "the resumed turn continues the conversation")
	evs := rig.events(t, sess.ID)
	assert.Equal(t, "Picking up where we left off.", evs[after(evs, 0, "agent.message")].AsAgentMessage().Content[0].Text)
	rig.noSecret(t, sess.ID)
}

// A one-cent budget and a reply that costs more: idle budget_reached after
// one model call, and a further message is refused.
func TestClaudeCodeBudgetReached(t *testing.T) {
	t.Parallel()
	rig := newCCRig(t, fakemessages.Reply{
		Blocks: []fakemessages.Block{fakemessages.ToolUse("Bash", map[string]any{"command": "true"})},
		Usage:  &fakemessages.Usage{InputTokens: 100, OutputTokens: 10_000}, // $0.1002 at Sonnet 5.5 list price
	})
	ctx := context.Background()
	sess, err := rig.c.Beta.Sessions.New(ctx, anthropic.BetaSessionNewParams{
		Agent:         anthropic.BetaSessionNewParamsAgentUnion{OfString: param.NewOpt("agent_cc")},
		EnvironmentID: "env_cc", VaultIDs: []string{"vault_llm"},
		Budget: anthropic.BetaManagedAgentsBudgetLimitParam{MaxListCost: anthropic.BetaMonetaryAmountParam{Amount: "1", Currency: "USD"}},
	})
	require.NoError(t, err)
	_, err = rig.c.Beta.Sessions.Events.Send(ctx, sess.ID, anthropic.BetaSessionEventSendParams{
		Events: []anthropic.BetaManagedAgentsEventParamsUnion{userMessage("Spend it all")}})
	require.NoError(t, err)
	stop := rig.awaitStop(t, sess.ID, 1)
	require.Equal(t, "session.status_idle", stop.Type)
	assert.Equal(t, "budget_reached", stop.StopReason.Type)
	assert.Equal(t, "null", stop.AsSessionStatusIdle().JSON.StopDetails.Raw(), "a budget idle: stop_details null")
	assert.Len(t, rig.fake.ModelCalls(), 1)

	got, err := rig.c.Beta.Sessions.Get(ctx, sess.ID, anthropic.BetaSessionGetParams{})
	require.NoError(t, err)
	assert.Equal(t, "10", got.Usage.ListCost.Amount, "list cost in cents")

	_, err = rig.c.Beta.Sessions.Events.Send(ctx, sess.ID, anthropic.BetaSessionEventSendParams{
		Events: []anthropic.BetaManagedAgentsEventParamsUnion{userMessage("More")}})
	var apiErr *anthropic.Error
	require.True(t, errors.As(err, &apiErr), "err %v", err)
	assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
	assert.Contains(t, apiErr.Error(), "budget")
	assert.Len(t, rig.fake.ModelCalls(), 1)
	rig.noSecret(t, sess.ID)
}

// No LLM vault: a clear session.error, and Claude Code never runs.
func TestClaudeCodeWithoutLLMVault(t *testing.T) {
	t.Parallel()
	rig := newCCRig(t)
	ctx := context.Background()
	sess, err := rig.c.Beta.Sessions.New(ctx, anthropic.BetaSessionNewParams{
		Agent:         anthropic.BetaSessionNewParamsAgentUnion{OfString: param.NewOpt("agent_cc")},
		EnvironmentID: "env_cc", VaultIDs: []string{"vault_other"},
	})
	require.NoError(t, err)
	_, err = rig.c.Beta.Sessions.Events.Send(ctx, sess.ID, anthropic.BetaSessionEventSendParams{
		Events: []anthropic.BetaManagedAgentsEventParamsUnion{userMessage("hello")}})
	require.NoError(t, err)
	rig.awaitStop(t, sess.ID, 1)
	evs := rig.events(t, sess.ID)
	i := after(evs, 0, "session.error")
	require.GreaterOrEqual(t, i, 0, "events %v", types(evs))
	assert.Contains(t, evs[i].Error.Message, "Attach exactly one LLM vault")
	assert.Empty(t, rig.fake.Requests(), "Claude Code must not run")
	rig.noSecret(t, sess.ID)
}

func TestClaudeCodeAgentConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		agent daemon.LocalAgent
		key   string
	}{
		{daemon.LocalAgent{ID: "a", Harness: "codex"}, "local.agents[0].harness"},
		{daemon.LocalAgent{ID: "a", Command: []string{"./h.sh"}, AllowedTools: []string{"Bash"}}, "local.agents[0].allowed_tools"},
		{daemon.LocalAgent{ID: "a", Command: []string{"./h.sh"}, ClaudeBinary: "claude"}, "local.agents[0].claude_binary"},
	} {
		cfg := baseConfig(t.TempDir())
		cfg.Backend = "local"
		cfg.Local.Agents = []daemon.LocalAgent{tc.agent}
		var ce *daemon.ConfigError
		err := cfg.Validate()
		if assert.True(t, errors.As(err, &ce), "%+v: %v", tc.agent, err) {
			assert.Equal(t, tc.key, ce.Key)
		}
	}
	cfg := baseConfig(t.TempDir())
	cfg.Runs.Retention.Interval = time.Hour
	cfg.Local.Agents = []daemon.LocalAgent{{ID: "a", Command: []string{"./h.sh"}, Model: "m", System: "s"}}
	assert.NoError(t, cfg.Validate(), "model and system describe any agent")
}

// examples/claude-code.yaml loads, and its claude-code keys arrive.
func TestClaudeCodeExampleConfigLoads(t *testing.T) {
	t.Parallel()
	cfg, err := daemon.LoadConfig(viper.New(), "../examples/claude-code.yaml")
	require.NoError(t, err)
	require.Len(t, cfg.Local.Agents, 1)
	a := cfg.Local.Agents[0]
	assert.Equal(t, "claude-code", a.Harness)
	assert.Equal(t, "claude-sonnet-5-5", a.Model)
	assert.Equal(t, []string{"Bash", "Read", "Grep", "Glob", "Write"}, a.AllowedTools)
	assert.Equal(t, []string{"WebFetch", "WebSearch"}, a.DisallowedTools)
	assert.Equal(t, 30, a.MaxTurns)
	assert.Contains(t, a.AppendSystem, "unattended")
	assert.Equal(t, "vault_anthropic", cfg.Local.Vaults[0].ID)
}
