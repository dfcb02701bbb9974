package fakeupstream_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/internal/fakeupstream"
)

// sdk is the official Go SDK pointed at the fake. The Go SDK does not put
// beta=true in the URL (it keeps it as a request qualifier), so it is added,
// and its WithAPIKey sends a Bearer token, which the fake refuses (the daemon
// authenticates with x-api-key), so the key goes in that header.
func sdk(fake *fakeupstream.Server) anthropic.Client {
	return anthropic.NewClient(
		option.WithoutEnvironmentDefaults(),
		option.WithBaseURL(fake.URL),
		option.WithHeader("X-Api-Key", fake.APIKey()),
		option.WithHTTPClient(fake.Client()),
		option.WithQuery("beta", "true"),
		option.WithMaxRetries(0),
	)
}

func seed(fake *fakeupstream.Server) {
	fake.AddAgent("agent_1", 3)
	fake.AddEnvironment("env_1")
	fake.AddVault("vlt_1")
	fake.AddFile("file_1")
	fake.AddMemoryStore("memstore_1")
}

func runMetadata() map[string]string {
	return map[string]string{fakeupstream.MetadataDeploymentID: "depl_1", fakeupstream.MetadataRunID: "drun_1"}
}

func TestOfficialSDKDecodesEveryAnswer(t *testing.T) {
	fake := fakeupstream.New(t)
	seed(fake)
	client := sdk(fake)
	ctx := t.Context()

	agent, err := client.Beta.Agents.Get(ctx, "agent_1", anthropic.BetaAgentGetParams{})
	require.NoError(t, err)
	assert.Equal(t, int64(3), agent.Version)
	assert.True(t, agent.ArchivedAt.IsZero())

	env, err := client.Beta.Environments.Get(ctx, "env_1", anthropic.BetaEnvironmentGetParams{})
	require.NoError(t, err)
	assert.Equal(t, "env_1", env.ID)
	vault, err := client.Beta.Vaults.Get(ctx, "vlt_1", anthropic.BetaVaultGetParams{})
	require.NoError(t, err)
	assert.Equal(t, "vlt_1", vault.ID)

	sess, err := client.Beta.Sessions.New(ctx, anthropic.BetaSessionNewParams{
		Agent: anthropic.BetaSessionNewParamsAgentUnion{OfBetaManagedAgentsAgent: &anthropic.BetaManagedAgentsAgentParams{
			ID: "agent_1", Version: anthropic.Int(2),
		}},
		EnvironmentID: "env_1",
		Metadata:      runMetadata(),
		VaultIDs:      []string{"vlt_1"},
		Resources: []anthropic.BetaSessionNewParamsResourceUnion{
			{OfGitHubRepository: &anthropic.BetaManagedAgentsGitHubRepositoryResourceParams{
				URL: "https://github.com/acme/repo", AuthorizationToken: "ghp_secret",
				Checkout: anthropic.BetaManagedAgentsGitHubRepositoryResourceParamsCheckoutUnion{
					OfBranch: &anthropic.BetaManagedAgentsBranchCheckoutParam{Name: "main"}},
			}},
			{OfFile: &anthropic.BetaManagedAgentsFileResourceParams{FileID: "file_1"}},
			{OfMemoryStore: &anthropic.BetaManagedAgentsMemoryStoreResourceParam{MemoryStoreID: "memstore_1"}},
		},
	})
	require.NoError(t, err)
	assert.Equal(t, int64(2), sess.Agent.Version)
	assert.Equal(t, "env_1", sess.EnvironmentID)
	assert.Equal(t, runMetadata(), sess.Metadata)
	require.Len(t, sess.Resources, 3)
	assert.Equal(t, "/workspace/repo", sess.Resources[0].MountPath)
	assert.NotContains(t, sess.RawJSON(), "ghp_secret", "a session never echoes a token")
	stored, ok := fake.Session(sess.ID)
	require.True(t, ok)
	assert.Equal(t, "ghp_secret", stored.Resources[0].AuthorizationToken, "the fake keeps what it received")

	got, err := client.Beta.Sessions.Get(ctx, sess.ID, anthropic.BetaSessionGetParams{})
	require.NoError(t, err)
	assert.Equal(t, sess.ID, got.ID)

	stream := client.Beta.Sessions.Events.StreamEvents(ctx, sess.ID, anthropic.BetaSessionEventStreamParams{})
	defer stream.Close()

	sent, err := client.Beta.Sessions.Events.Send(ctx, sess.ID, anthropic.BetaSessionEventSendParams{
		Events: []anthropic.BetaManagedAgentsEventParamsUnion{{OfUserMessage: &anthropic.BetaManagedAgentsUserMessageEventParams{
			Content: []anthropic.BetaManagedAgentsUserMessageEventParamsContentUnion{{OfText: &anthropic.BetaManagedAgentsTextBlockParam{Text: "hello"}}},
		}}},
	})
	require.NoError(t, err)
	require.Len(t, sent.Data, 1)
	assert.Equal(t, "user.message", sent.Data[0].Type)

	require.True(t, stream.Next(), "stream error: %v", stream.Err())
	assert.Equal(t, "user.message", stream.Current().Type)
	_, err = fake.EmitEvent(sess.ID, map[string]any{"type": "agent.message", "content": []any{map[string]any{"type": "text", "text": "hi"}}})
	require.NoError(t, err)
	require.True(t, stream.Next(), "stream error: %v", stream.Err())
	assert.Equal(t, "agent.message", stream.Current().Type)

	events, err := client.Beta.Sessions.Events.List(ctx, sess.ID, anthropic.BetaSessionEventListParams{})
	require.NoError(t, err)
	require.Len(t, events.Data, 2)
	assert.Equal(t, []string{"user.message", "agent.message"}, []string{events.Data[0].Type, events.Data[1].Type})

	list, err := client.Beta.Sessions.List(ctx, anthropic.BetaSessionListParams{AgentID: anthropic.String("agent_1")})
	require.NoError(t, err)
	require.Len(t, list.Data, 1)
	assert.Equal(t, sess.ID, list.Data[0].ID)
}

func TestListsPageThroughEverySessionOnce(t *testing.T) {
	fake := fakeupstream.New(t)
	seed(fake)
	client := sdk(fake)
	for range 25 {
		createRaw(t, fake, sessionBody("agent_1", "env_1"), nil)
	}
	seen := map[string]bool{}
	pager := client.Beta.Sessions.ListAutoPaging(t.Context(), anthropic.BetaSessionListParams{Limit: anthropic.Int(7)})
	for pager.Next() {
		id := pager.Current().ID
		assert.False(t, seen[id], "session %s listed twice", id)
		seen[id] = true
	}
	require.NoError(t, pager.Err())
	assert.Len(t, seen, 25)
}

func sessionBody(agentID, envID string) map[string]any {
	return map[string]any{
		"agent":          map[string]any{"type": "agent", "id": agentID, "version": 1},
		"environment_id": envID,
		"metadata":       runMetadata(),
	}
}

// createRaw posts a session with the contract's headers plus extra.
func createRaw(t *testing.T, fake *fakeupstream.Server, body any, extra http.Header) *http.Response {
	t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	return do(t, fake, http.MethodPost, "/v1/sessions?beta=true", raw, extra)
}

func do(t *testing.T, fake *fakeupstream.Server, method, path string, body []byte, extra http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, fake.URL+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("X-Api-Key", fake.APIKey())
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("anthropic-beta", "files-api-2025-04-14, managed-agents-2026-04-01")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range extra {
		req.Header[k] = vs
	}
	resp, err := fake.Client().Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func errorMessage(t *testing.T, resp *http.Response) string {
	t.Helper()
	var env struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
	require.Equal(t, "error", env.Type)
	return env.Error.Message
}

func TestContractViolationsAreAnsweredAndRecorded(t *testing.T) {
	valid := sessionBody("agent_1", "env_1")
	with := func(k string, v any) map[string]any {
		b := map[string]any{}
		for kk, vv := range valid {
			b[kk] = vv
		}
		b[k] = v
		return b
	}
	cases := []struct {
		name   string
		path   string
		body   any
		header http.Header
		status int
		want   string
	}{
		{"wrong key", "/v1/sessions?beta=true", valid, http.Header{"X-Api-Key": {"sk-other"}}, 401, "x-api-key does not match"},
		{"bearer token", "/v1/sessions?beta=true", valid, http.Header{"Authorization": {"Bearer x"}}, 400, "Authorization header"},
		{"no beta header", "/v1/sessions?beta=true", valid, http.Header{"Anthropic-Beta": {"files-api-2025-04-14"}}, 400, "managed-agents-2026-04-01"},
		{"no version header", "/v1/sessions?beta=true", valid, http.Header{"Anthropic-Version": {""}}, 400, "anthropic-version"},
		{"no beta query", "/v1/sessions", valid, nil, 400, "beta=true"},
		{"form content type", "/v1/sessions?beta=true", valid, http.Header{"Content-Type": {"text/plain"}}, 400, "Content-Type"},
		{"bare agent id", "/v1/sessions?beta=true", with("agent", "agent_1"), nil, 400, "body.agent must be an object"},
		{"agent without version", "/v1/sessions?beta=true", with("agent", map[string]any{"type": "agent", "id": "agent_1"}), nil, 400, "body.agent.version"},
		{"unknown field", "/v1/sessions?beta=true", with("deployment", "x"), nil, 400, `unknown field "deployment"`},
		{"17 metadata pairs", "/v1/sessions?beta=true", with("metadata", func() map[string]string {
			m := map[string]string{}
			for i := range 17 {
				m[fmt.Sprintf("k%d", i)] = "v"
			}
			return m
		}()), nil, 400, "at most 16"},
		{"budget shape", "/v1/sessions?beta=true", with("budget", map[string]any{"type": "limit"}), nil, 400, "body.budget.max_list_cost"},
		{"file lookup without the Files API beta", "/v1/files/file_1?beta=true", nil, http.Header{"Anthropic-Beta": {"managed-agents-2026-04-01"}}, 400, fakeupstream.FilesBeta},
		{"resource type", "/v1/sessions?beta=true", with("resources", []any{map[string]any{"type": "s3"}}), nil, 400, "body.resources[0].type"},
		{"stray resource field", "/v1/sessions?beta=true", with("resources", []any{map[string]any{"type": "file", "file_id": "f", "url": "u"}}), nil, 400, `unknown field "url"`},
		{"checkout mixup", "/v1/sessions?beta=true", with("resources", []any{map[string]any{"type": "github_repository", "url": "u", "checkout": map[string]any{"type": "branch", "sha": "abc"}}}), nil, 400, "branch checkout has no sha"},
		{"empty vault id", "/v1/sessions?beta=true", with("vault_ids", []string{""}), nil, 400, "body.vault_ids[0]"},
		{"unknown route", "/v1/things?beta=true", valid, nil, 404, "no such route"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := fakeupstream.New(t, fakeupstream.AllowViolations())
			seed(fake)
			raw, err := json.Marshal(tc.body)
			require.NoError(t, err)
			resp := do(t, fake, http.MethodPost, tc.path, raw, tc.header)
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Contains(t, errorMessage(t, resp), tc.want)
			require.Len(t, fake.Violations(), 1)
			assert.Contains(t, fake.Violations()[0].Problem, tc.want)
			assert.Zero(t, fake.SessionsCreated())
		})
	}
}

func TestEventBodiesAreChecked(t *testing.T) {
	fake := fakeupstream.New(t, fakeupstream.AllowViolations())
	seed(fake)
	resp := createRaw(t, fake, sessionBody("agent_1", "env_1"), nil)
	require.Equal(t, 200, resp.StatusCode)
	id := fake.Sessions()[0].ID
	for body, want := range map[string]string{
		`{"events":[]}`:             "non-empty",
		`[{"type":"user.message"}]`: "must be a JSON object",
		`{"events":[{"type":"agent.message","content":[]}]}`:                              "cannot be sent by a client",
		`{"events":[{"type":"user.message","content":[]}]}`:                               "content must be a non-empty array",
		`{"events":[{"type":"system.message","content":[{"type":"image","source":{}}]}]}`: "must be text",
	} {
		resp := do(t, fake, http.MethodPost, "/v1/sessions/"+id+"/events?beta=true", []byte(body), nil)
		assert.Equal(t, 400, resp.StatusCode, body)
		assert.Contains(t, errorMessage(t, resp), want, body)
	}
	assert.Empty(t, fake.Events(id))
}

func TestMissingAndArchivedObjectsAnswerLikeTheUpstream(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(*fakeupstream.Server)
		body   map[string]any
		status int
		want   string
	}{
		{"gone agent", func(f *fakeupstream.Server) { f.RemoveAgent("agent_1") }, sessionBody("agent_1", "env_1"), 404, "agent agent_1 not found"},
		{"archived agent", func(f *fakeupstream.Server) { f.ArchiveAgent("agent_1") }, sessionBody("agent_1", "env_1"), 400, "agent agent_1 is archived"},
		{"missing environment", nil, sessionBody("agent_1", "env_404"), 404, "environment env_404 not found"},
		{"archived environment", func(f *fakeupstream.Server) { f.ArchiveEnvironment("env_1") }, sessionBody("agent_1", "env_1"), 400, "environment env_1 is archived"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := fakeupstream.New(t)
			seed(fake)
			if tc.setup != nil {
				tc.setup(fake)
			}
			resp := createRaw(t, fake, tc.body, nil)
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Contains(t, errorMessage(t, resp), tc.want)
			assert.NotEmpty(t, resp.Header.Get("request-id"))
			assert.Zero(t, fake.SessionsCreated())
		})
	}
}

func TestFaults(t *testing.T) {
	t.Run("next N fail with retry-after, then normal", func(t *testing.T) {
		fake := fakeupstream.New(t)
		seed(fake)
		fake.InjectFault(fakeupstream.RouteCreateSession, 2, fakeupstream.Fault{Status: 503, RetryAfter: "3", Message: "overloaded"})
		for range 2 {
			resp := createRaw(t, fake, sessionBody("agent_1", "env_1"), nil)
			assert.Equal(t, 503, resp.StatusCode)
			assert.Equal(t, "3", resp.Header.Get("retry-after"))
			assert.Equal(t, "overloaded", errorMessage(t, resp))
		}
		assert.Equal(t, 200, createRaw(t, fake, sessionBody("agent_1", "env_1"), nil).StatusCode)
		assert.Equal(t, 1, fake.SessionsCreated())
	})
	t.Run("drop closes the connection", func(t *testing.T) {
		fake := fakeupstream.New(t)
		seed(fake)
		fake.InjectFault(fakeupstream.RouteCreateSession, 1, fakeupstream.Fault{Drop: true})
		raw, _ := json.Marshal(sessionBody("agent_1", "env_1"))
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, fake.URL+"/v1/sessions?beta=true", bytes.NewReader(raw))
		req.Header = http.Header{"X-Api-Key": {fake.APIKey()}, "Anthropic-Version": {"1"}, "Anthropic-Beta": {fakeupstream.ManagedAgentsBeta}, "Content-Type": {"application/json"}}
		_, err := fake.Client().Do(req)
		require.Error(t, err)
	})
	t.Run("after commit plus idempotency key replays the first answer", func(t *testing.T) {
		fake := fakeupstream.New(t)
		seed(fake)
		fake.InjectFault(fakeupstream.RouteCreateSession, 1, fakeupstream.Fault{AfterCommit: true, Status: 500})
		key := http.Header{fakeupstream.IdempotencyKeyHeader: {"k1"}}
		assert.Equal(t, 500, createRaw(t, fake, sessionBody("agent_1", "env_1"), key).StatusCode)
		assert.Equal(t, 1, fake.SessionsCreated(), "the session exists although the answer was a 500")
		resp := createRaw(t, fake, sessionBody("agent_1", "env_1"), key)
		require.Equal(t, 200, resp.StatusCode)
		var s struct{ ID string }
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&s))
		assert.Equal(t, fake.Sessions()[0].ID, s.ID)
		assert.Equal(t, 1, fake.SessionsCreated())
	})
	t.Run("hang until release", func(t *testing.T) {
		fake := fakeupstream.New(t)
		seed(fake)
		fake.InjectFault(fakeupstream.RouteCreateSession, 1, fakeupstream.Fault{Hang: true})
		done := make(chan int)
		go func() {
			raw, _ := json.Marshal(sessionBody("agent_1", "env_1"))
			req, _ := http.NewRequest(http.MethodPost, fake.URL+"/v1/sessions?beta=true", bytes.NewReader(raw))
			req.Header = http.Header{"X-Api-Key": {fake.APIKey()}, "Anthropic-Version": {"1"}, "Anthropic-Beta": {fakeupstream.ManagedAgentsBeta}, "Content-Type": {"application/json"}}
			resp, err := fake.Client().Do(req)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		require.NoError(t, fake.AwaitHung(ctx, 1))
		assert.Equal(t, 1, fake.CreatesInFlight())
		fake.Release()
		assert.Equal(t, 200, <-done)
		assert.Equal(t, 1, fake.MaxCreatesInFlight())
	})
}

func TestInMemoryServerRunsOnFakeTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := fakeupstream.NewInMemory(t)
		seed(fake)
		fake.SetLatency(time.Hour)
		start := time.Now()
		resp := createRaw(t, fake, sessionBody("agent_1", "env_1"), nil)
		_, _ = io.Copy(io.Discard, resp.Body)
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, time.Hour, time.Since(start), "latency is waited on the bubble's clock")
		assert.True(t, strings.HasPrefix(fake.Sessions()[0].ID, "sesn_"))
	})
}

func BenchmarkCreateSessionAndEvents(b *testing.B) {
	fake := fakeupstream.New(b, fakeupstream.WithoutRecording())
	fake.AddAgent("agent_1", 1)
	fake.AddEnvironment("env_1")
	body, _ := json.Marshal(sessionBody("agent_1", "env_1"))
	events := []byte(`{"events":[{"type":"user.message","content":[{"type":"text","text":"go"}]}]}`)
	header := http.Header{"X-Api-Key": {fake.APIKey()}, "Anthropic-Version": {"1"}, "Anthropic-Beta": {fakeupstream.ManagedAgentsBeta}, "Content-Type": {"application/json"}}
	post := func(path string, body []byte) []byte {
		req, _ := http.NewRequest(http.MethodPost, fake.URL+path, bytes.NewReader(body))
		req.Header = header.Clone()
		resp, err := fake.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			b.Fatalf("%d %s", resp.StatusCode, out)
		}
		return out
	}
	b.ReportAllocs()
	for b.Loop() {
		var s struct{ ID string }
		_ = json.Unmarshal(post("/v1/sessions?beta=true", body), &s)
		post("/v1/sessions/"+s.ID+"/events?beta=true", events)
	}
}
