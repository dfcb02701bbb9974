package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// contractServer speaks the plan/apply wire contract strictly: it refuses
// a request without the beta header, on another method or path, or with a
// body that has unknown members, and answers with a canned response.
type contractServer struct {
	t      *testing.T
	mu     sync.Mutex
	calls  []contractCall
	status int
	answer string
}

type contractCall struct {
	Set, Action string
	Body        struct {
		Deployments []struct {
			Key        string          `json:"key"`
			Source     string          `json:"source"`
			Definition json.RawMessage `json:"definition"`
		} `json:"deployments"`
		Prune   bool    `json:"prune"`
		Force   bool    `json:"force"`
		IfMatch *string `json:"if_match"`
	}
}

func (s *contractServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"type":"error","error":{"type":"invalid_request_error","message":`+jsonString(msg)+`}}`)
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/deployment_sets/")
	set, action, _ := strings.Cut(rest, "/")
	switch {
	case r.Method != http.MethodPost || !ok || (action != "plan" && action != "apply"):
		fail(http.StatusNotFound, "no route "+r.Method+" "+r.URL.Path)
		return
	case r.Header.Get("anthropic-beta") != managedAgentsBeta:
		fail(http.StatusBadRequest, "missing anthropic-beta")
		return
	}
	call := contractCall{Set: set, Action: action}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&call.Body); err != nil {
		fail(http.StatusBadRequest, "body: "+err.Error())
		return
	}
	for i, d := range call.Body.Deployments {
		var obj map[string]any
		if d.Key == "" || json.Unmarshal(d.Definition, &obj) != nil || obj == nil {
			fail(http.StatusBadRequest, "deployments["+jsonString(i)+"]: key and object definition required")
			return
		}
	}
	s.mu.Lock()
	s.calls = append(s.calls, call)
	status, answer := s.status, s.answer
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, answer)
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func (s *contractServer) lastCall() contractCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	require.NotEmpty(s.t, s.calls, "no request reached the daemon")
	return s.calls[len(s.calls)-1]
}

func newContractServer(t *testing.T, status int, answer string) (*contractServer, string) {
	s := &contractServer{t: t, status: status, answer: answer}
	return s, serveUnix(t, s)
}

// applyDir is a small directory of deployment files: a token by env, a
// multi-document file, a dot directory that is not read.
func applyDir(t *testing.T) string {
	dir := t.TempDir()
	body := "agent: agent_1\nenvironment_id: env_1\ninitial_events:\n  - {type: user.message, content: [{type: text, text: hi}]}\n"
	files := map[string]string{
		"nightly/digest.yaml": "name: digest\n" + body + "schedule: {type: cron, expression: '0 9 * * *', timezone: UTC}\n" +
			"resources:\n  - type: github_repository\n    url: https://github.com/o/r\n    authorization_token_env: GH_TOKEN\n",
		"pair.yaml":     "name: a\n" + body + "---\nkey: b-key\nname: b\npaused: true\n" + body,
		".git/x.yaml":   "not: read",
		"notes/doc.txt": "not read",
	}
	for name, text := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	}
	return dir
}

const planAnswer = `{"set":"team","hash":"sha256:5e1f","applied":false,"changes":[
 {"key":"b-key","action":"create"},
 {"key":"nightly/digest.yaml","action":"update","deployment_id":"depl_01","diff":[
   {"field":"schedule.expression","from":"0 8 * * *","to":"0 9 * * *"},
   {"field":"resources[0].authorization_token","from":"(sealed)","to":"(changed)"},
   {"field":"description","from":"old\ntext","to":null}]},
 {"key":"old/gone.yaml","action":"archive","deployment_id":"depl_03"},
 {"key":"pair.yaml#0","action":"unchanged","deployment_id":"depl_02"}]}`

func TestApplyDryRunSendsTheDirectoryAndPrintsThePlan(t *testing.T) {
	srv, socket := newContractServer(t, http.StatusOK, planAnswer)
	dir := applyDir(t)
	env := map[string]string{envSocket: socket, "GH_TOKEN": "ghp_secret_value"}
	res := runCLI(t, time.Now, env, nil, "apply", "-f", dir, "--set", "team", "--prune", "--dry-run")
	require.NoError(t, res.err)
	call := srv.lastCall()
	assert.Equal(t, "team", call.Set)
	assert.Equal(t, "plan", call.Action)
	assert.True(t, call.Body.Prune)
	assert.False(t, call.Body.Force)
	assert.Nil(t, call.Body.IfMatch, "no if_match on a plan")
	var keys, sources []string
	for _, d := range call.Body.Deployments {
		keys, sources = append(keys, d.Key), append(sources, d.Source)
	}
	assert.Equal(t, []string{"nightly/digest.yaml", "pair.yaml#0", "b-key"}, keys)
	assert.Equal(t, []string{"nightly/digest.yaml:1", "pair.yaml:1", "pair.yaml:7"}, sources)
	assert.Contains(t, string(call.Body.Deployments[0].Definition), `"authorization_token":"ghp_secret_value"`)
	assert.NotContains(t, string(call.Body.Deployments[0].Definition), "authorization_token_env")
	assert.Contains(t, string(call.Body.Deployments[2].Definition), `"paused":true`)
	assert.NotContains(t, res.stdout, "ghp_secret_value")
	assertGolden(t, "dry-run", strings.ReplaceAll(res.stdout, dir, "DIR"))
}

func TestApplyAppliesWithIfMatchAndForce(t *testing.T) {
	applied := strings.Replace(strings.Replace(planAnswer, `"applied":false`, `"applied":true`, 1),
		`{"key":"b-key","action":"create"}`, `{"key":"b-key","action":"create","deployment_id":"depl_04"}`, 1)
	srv, socket := newContractServer(t, http.StatusOK, applied)
	env := map[string]string{envSocket: socket, "GH_TOKEN": "t"}
	res := runCLI(t, time.Now, env, nil, "apply", "-f", applyDir(t), "--set", "team", "--prune", "--force", "--if-match", "sha256:5e1f")
	require.NoError(t, res.err)
	call := srv.lastCall()
	assert.Equal(t, "apply", call.Action)
	assert.True(t, call.Body.Force)
	require.NotNil(t, call.Body.IfMatch)
	assert.Equal(t, "sha256:5e1f", *call.Body.IfMatch)
	assertGolden(t, "applied", res.stdout)
}

func TestApplyNothingToDo(t *testing.T) {
	_, socket := newContractServer(t, http.StatusOK,
		`{"set":"default","hash":"sha256:aa","applied":false,"changes":[{"key":"pair.yaml#0","action":"unchanged","deployment_id":"depl_02"}]}`)
	res := runCLI(t, time.Now, map[string]string{envSocket: socket, "GH_TOKEN": "t"}, nil, "apply", "-f", applyDir(t))
	require.NoError(t, res.err)
	assertGolden(t, "unchanged", res.stdout)
}

func TestApplyJSONPrintsTheDaemonsAnswer(t *testing.T) {
	_, socket := newContractServer(t, http.StatusOK, planAnswer)
	res := runCLI(t, time.Now, map[string]string{envSocket: socket, "GH_TOKEN": "t"}, nil, "apply", "-f", applyDir(t), "--dry-run", "--json")
	require.NoError(t, res.err)
	var got, want any
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &got))
	require.NoError(t, json.Unmarshal([]byte(planAnswer), &want))
	assert.Equal(t, want, got)
}

func TestApplyErrors(t *testing.T) {
	t.Run("the daemon's refusal is the error", func(t *testing.T) {
		_, socket := newContractServer(t, http.StatusConflict,
			`{"type":"error","error":{"type":"invalid_request_error","message":"prune would archive 3 of the 4 deployments of set default: more than half; pass --force"}}`)
		res := runCLI(t, time.Now, map[string]string{envSocket: socket, "GH_TOKEN": "t"}, nil, "apply", "-f", applyDir(t), "--prune")
		require.Error(t, res.err)
		assert.Equal(t, "prune would archive 3 of the 4 deployments of set default: more than half; pass --force (invalid_request_error, HTTP 409)", res.err.Error())
		assert.Empty(t, res.stdout)
	})
	t.Run("a bad file sends nothing", func(t *testing.T) {
		srv, socket := newContractServer(t, http.StatusOK, planAnswer)
		dir := applyDir(t) // GH_TOKEN is not set
		res := runCLI(t, time.Now, map[string]string{envSocket: socket}, nil, "apply", "-f", dir)
		require.Error(t, res.err)
		assert.Equal(t, "-f "+dir+": nightly/digest.yaml:10: resources[0].authorization_token_env: environment variable GH_TOKEN is not set: export it before applying, or use authorization_token_file", res.err.Error())
		assert.Empty(t, srv.calls)
	})
	t.Run("if-match with dry-run", func(t *testing.T) {
		res := runCLI(t, time.Now, nil, nil, "apply", "-f", t.TempDir(), "--dry-run", "--if-match", "sha256:x")
		require.ErrorContains(t, res.err, "--if-match: only applies; drop --dry-run")
	})
	t.Run("-f is required", func(t *testing.T) {
		res := runCLI(t, time.Now, nil, nil, "apply")
		require.ErrorContains(t, res.err, `required flag(s) "file" not set`)
	})
}
