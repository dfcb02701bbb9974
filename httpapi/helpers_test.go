package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/httpapi"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/store"
)

// env is a real API over a real listener and a real bbolt file.
type env struct {
	t       *testing.T
	srv     *httptest.Server
	client  anthropic.Client
	svc     *deployments.Service
	store   *store.Store
	backend *sessionstest.Backend
	keyring *crypto.Keyring
}

func newEnv(t *testing.T) *env {
	t.Helper()
	// NoSync: a real bbolt file, without paying an fsync per request in tests.
	st, err := store.Open(filepath.Join(t.TempDir(), "test.db"), store.Options{NoSync: true})
	require.NoError(t, err)
	k, err := crypto.GenerateKeyring()
	require.NoError(t, err)
	backend := sessionstest.New(map[string]int64{"agent_a": 3, "agent_b": 1})
	svc := deployments.NewService(deployments.Config{Store: st, Backend: backend, Sealer: k})
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Service: svc}))
	t.Cleanup(func() {
		srv.Close()
		require.Empty(t, st.Check(), "bbolt consistency check")
		require.NoError(t, st.Close())
	})
	client := anthropic.NewClient(option.WithBaseURL(srv.URL), option.WithAPIKey("sk-test"), option.WithMaxRetries(0))
	return &env{t: t, srv: srv, client: client, svc: svc, store: st, backend: backend, keyring: k}
}

// raw sends a request with the beta header and returns status and body.
func (e *env) raw(method, path string, body any, headers ...string) (int, map[string]any, http.Header) {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = bytes.NewBufferString(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		require.NoError(e.t, err)
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, r)
	require.NoError(e.t, err)
	req.Header.Set("anthropic-beta", httpapi.BetaHeader)
	req.Header.Set("x-api-key", "sk-test")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	var out map[string]any
	if len(data) > 0 {
		require.NoError(e.t, json.Unmarshal(data, &out), "body: %s", data)
	}
	return resp.StatusCode, out, resp.Header
}

func userMessage(text string) anthropic.BetaManagedAgentsDeploymentInitialEventParamsUnion {
	return anthropic.BetaManagedAgentsDeploymentInitialEventParamsUnion{
		OfUserMessage: &anthropic.BetaManagedAgentsUserMessageEventParams{
			Content: []anthropic.BetaManagedAgentsUserMessageEventParamsContentUnion{
				{OfText: &anthropic.BetaManagedAgentsTextBlockParam{Text: text}},
			},
		},
	}
}

// validBody is a minimal valid create body for raw requests.
func validBody() map[string]any {
	return map[string]any{
		"name":           "digest",
		"agent":          map[string]any{"type": "agent", "id": "agent_a", "version": 2},
		"environment_id": "env_1",
		"initial_events": []any{map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": "hi"}}}},
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return v
}

func mustDecode(t *testing.T, name string) deployments.CreateInput {
	t.Helper()
	b := validBody()
	b["name"] = name
	data, err := json.Marshal(b)
	require.NoError(t, err)
	in, err := deployments.DecodeCreate(data)
	require.NoError(t, err)
	return in
}

func errMessage(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

func errType(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	s, _ := e["type"].(string)
	return s
}
