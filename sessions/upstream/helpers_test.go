package upstream_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/internal/fakeupstream"
	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/upstream"
)

// repoToken is the decrypted repository token of the test deployment; it
// must reach the upstream and nothing else.
const repoToken = "ghp_decrypted_TOKEN_0123456789abcdef"

// seedFake stores the objects runRequest names.
func seedFake(f *fakeupstream.Server) {
	f.AddAgent("agent_1", 3)
	f.AddEnvironment("env_1")
	f.AddVault("vlt_1")
	f.AddVault("vlt_2")
	f.AddFile("file_1")
	f.AddMemoryStore("memstore_1")
}

// newLoopback starts a seeded fake on a loopback port.
func newLoopback(t *testing.T, opts ...fakeupstream.Option) *fakeupstream.Server {
	fake := fakeupstream.New(t, opts...)
	seedFake(fake)
	return fake
}

// newInMemory starts a seeded fake reached over net.Pipe, for synctest bubbles.
func newInMemory(t *testing.T, opts ...fakeupstream.Option) *fakeupstream.Server {
	fake := fakeupstream.NewInMemory(t, opts...)
	seedFake(fake)
	return fake
}

// newBackend points a backend at fake; over loopback it uses its own default
// transport, in memory the fake's client.
func newBackend(t *testing.T, fake *fakeupstream.Server, inMemory bool, edit ...func(*upstream.Config)) *upstream.Backend {
	t.Helper()
	cfg := upstream.Config{URL: fake.URL, APIKey: fake.APIKey()}
	if inMemory {
		cfg.HTTPClient = fake.Client()
	}
	for _, e := range edit {
		e(&cfg)
	}
	b, err := upstream.New(cfg)
	require.NoError(t, err)
	return b
}

var initialEvents = []json.RawMessage{
	json.RawMessage(`{"type":"user.message","content":[{"type":"text","text":"first"}]}`),
	json.RawMessage(`{"type":"user.message","content":[{"type":"text","text":"second"}]}`),
	json.RawMessage(`{"type":"system.message","content":[{"type":"text","text":"be brief"}]}`),
}

// runRequest is the snapshot of a deployment with every kind of resource.
func runRequest(runID string) sessions.CreateRequest {
	return sessions.CreateRequest{
		DeploymentID:  "depl_1",
		RunID:         runID,
		Agent:         sessions.AgentRef{ID: "agent_1", Version: 2},
		EnvironmentID: "env_1",
		Resources: []sessions.Resource{
			{Type: "github_repository", URL: "https://github.com/acme/app", Checkout: &sessions.Checkout{Type: "branch", Name: "main"}, AuthorizationToken: repoToken},
			{Type: "file", FileID: "file_1", MountPath: "/mnt/data/input.csv"},
			{Type: "memory_store", MemoryStoreID: "memstore_1", Access: "read_only", Instructions: "notes"},
		},
		VaultIDs:      []string{"vlt_1", "vlt_2"},
		Metadata:      map[string]string{"team": "search"},
		InitialEvents: initialEvents,
	}
}

// requireRunError asserts err is a *sessions.RunError of type want whose
// message carries no secret.
func requireRunError(t *testing.T, err error, want sessions.ErrorType, apiKey string) *sessions.RunError {
	t.Helper()
	require.Error(t, err)
	var re *sessions.RunError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, want, re.Type, "message: %s", re.Message)
	assert.NotContains(t, re.Message, repoToken)
	assert.NotContains(t, re.Message, apiKey)
	return re
}

// closedURL is a loopback URL where nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr
}

// newPrefixed serves fake under a path prefix, like an upstream behind a
// gateway (https://gateway.example/managed/v1/…), and returns its base URL.
func newPrefixed(t *testing.T, prefix string, fake *fakeupstream.Server) string {
	srv := httptest.NewServer(http.StripPrefix(prefix, fake.Handler()))
	t.Cleanup(srv.Close)
	return srv.URL
}
