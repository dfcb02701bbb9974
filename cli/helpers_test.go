package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/httpapi"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// testClock is the one clock of a test: the service stamps times with it and
// the CLI renders relative times against it.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return v
}

// cliResult is what one CLI invocation produced.
type cliResult struct {
	stdout, stderr string
	err            error
}

// runCLI runs the client commands as main would, with injected clock,
// environment and stdin.
func runCLI(t *testing.T, now func() time.Time, env map[string]string, stdin io.Reader, args ...string) cliResult {
	t.Helper()
	// Neither the real default socket nor /etc/sandbox0d leaks into a test.
	missing := filepath.Join(t.TempDir(), "absent")
	return runCLIWith(t, clientDeps{now: now, getenv: func(k string) string { return env[k] },
		defaultSocket: func() string { return filepath.Join(missing, "default.sock") },
		systemConfig:  filepath.Join(missing, "config.yaml")}, stdin, args...)
}

// newTestRoot is the client command tree with test dependencies.
func newTestRoot(t *testing.T) *cobra.Command {
	root := &cobra.Command{Use: "sandbox0d"}
	registerClientCommands(root, clientDeps{now: time.Now, getenv: func(string) string { return "" },
		defaultSocket: func() string { return filepath.Join(t.TempDir(), "d.sock") }, systemConfig: filepath.Join(t.TempDir(), "c.yaml")})
	return root
}

// runCLIWith is runCLI with every dependency given.
func runCLIWith(t *testing.T, deps clientDeps, stdin io.Reader, args ...string) cliResult {
	t.Helper()
	root := &cobra.Command{Use: "sandbox0d", SilenceUsage: true, SilenceErrors: true}
	registerClientCommands(root, deps)
	var stdout, stderr bytes.Buffer
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	root.SetIn(stdin)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return cliResult{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// serveUnix serves h on a real Unix socket in a temporary directory.
func serveUnix(t *testing.T, h http.Handler) string {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "d.sock")
	require.Less(t, len(socket), 104, "socket path too long for sun_path: %s", socket)
	ln, err := net.Listen("unix", socket)
	require.NoError(t, err)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return socket
}

// apiEnv is the real API (service, bbolt store, sealing keyring, test
// session backend) served on a Unix socket, with a shared clock.
type apiEnv struct {
	t       *testing.T
	socket  string
	svc     *deployments.Service
	backend *sessionstest.Backend
	clock   *testClock
	// labels maps random ids to stable, same-length placeholders so golden
	// files do not change between runs and columns stay aligned.
	labels map[string]string
	ids    map[string]string // label → id
}

func newAPIEnv(t *testing.T, start time.Time) *apiEnv {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "api.db"), store.Options{})
	require.NoError(t, err)
	keyring, err := crypto.GenerateKeyring()
	require.NoError(t, err)
	backend := sessionstest.New(map[string]int64{"agent_a": 3})
	clock := &testClock{now: start}
	svc := deployments.NewService(deployments.Config{Store: st, Backend: backend, Sealer: keyring, Now: clock.Now})
	socket := serveUnix(t, httpapi.New(httpapi.Config{Service: svc}))
	t.Cleanup(func() {
		require.Empty(t, st.Check(), "bbolt consistency check")
		require.NoError(t, st.Close())
	})
	return &apiEnv{t: t, socket: socket, svc: svc, backend: backend, clock: clock,
		labels: map[string]string{}, ids: map[string]string{}}
}

// cli runs a client command against this API, with the shared clock.
func (e *apiEnv) cli(args ...string) cliResult {
	e.t.Helper()
	return runCLI(e.t, e.clock.Now, nil, nil, append([]string{"--socket", e.socket}, args...)...)
}

// label registers a readable placeholder for id in golden output.
func (e *apiEnv) label(id, name string) {
	prefix, _, _ := strings.Cut(id, "_")
	placeholder := prefix + "_" + name
	require.LessOrEqual(e.t, len(placeholder), len(id), "label %q longer than the id", name)
	e.labels[id] = placeholder + strings.Repeat("_", len(id)-len(placeholder))
	e.ids[name] = id
}

// idOf returns the id registered under a label.
func (e *apiEnv) idOf(name string) string {
	e.t.Helper()
	id, ok := e.ids[name]
	require.True(e.t, ok, "no id labelled %q", name)
	return id
}

// stable replaces every labelled id in s.
func (e *apiEnv) stable(s string) string {
	for id, placeholder := range e.labels {
		s = strings.ReplaceAll(s, id, placeholder)
	}
	return s
}

// createDeployment stores a deployment through the service at the clock's
// current time and labels its id.
func (e *apiEnv) createDeployment(label string, body map[string]any) string {
	e.t.Helper()
	data, err := json.Marshal(body)
	require.NoError(e.t, err)
	in, err := deployments.DecodeCreate(data)
	require.NoError(e.t, err)
	d, err := e.svc.Create(e.t.Context(), in)
	require.NoError(e.t, err)
	e.label(d.ID, label)
	return d.ID
}

// fire performs the scheduled fire of id at scheduledAt, as the scheduler
// would, and labels the run.
func (e *apiEnv) fire(id string, scheduledAt time.Time, label string) *deployments.Run {
	e.t.Helper()
	d, err := e.svc.Get(e.t.Context(), id)
	require.NoError(e.t, err)
	res, err := e.svc.Fire(e.t.Context(), id, scheduledAt, d.Generation, nil)
	require.NoError(e.t, err)
	require.NotNil(e.t, res.Run, "fire skipped: %s", res.Reason)
	e.label(res.Run.ID, label)
	return res.Run
}

// runNow performs a manual run and labels it.
func (e *apiEnv) runNow(id, label string) *deployments.Run {
	e.t.Helper()
	run, err := e.svc.RunNow(e.t.Context(), id)
	require.NoError(e.t, err)
	e.label(run.ID, label)
	return run
}

// minimalDeployment is the smallest valid create body.
func minimalDeployment(name string) map[string]any {
	return map[string]any{
		"name":           name,
		"agent":          "agent_a",
		"environment_id": "env_1",
		"initial_events": []any{userMessage("Summarise yesterday's alerts.")},
	}
}

func userMessage(text string) map[string]any {
	return map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": text}}}
}

func cronSpec(expression, zone string) map[string]any {
	return map[string]any{"type": "cron", "expression": expression, "timezone": zone}
}

// assertGolden compares got with testdata/<TestName>/<name>.golden (the
// top-level test's name), or rewrites the file under -update.
func assertGolden(t *testing.T, name, got string) {
	t.Helper()
	testName, _, _ := strings.Cut(t.Name(), "/")
	path := filepath.Join("testdata", testName, name+".golden")
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run go test ./cli -run %s -update", t.Name())
	assert.Equal(t, string(want), got, "output differs from %s (run with -update to accept)", path)
}
