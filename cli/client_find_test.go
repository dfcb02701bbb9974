package cli

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// listHandler answers the deployments listing with an empty page.
func listHandler(t *testing.T, seenKey *string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seenKey != nil {
			*seenKey = r.Header.Get("x-api-key")
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data":[],"next_page":null}`))
	})
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

// As root the default socket is /run/sandbox0d/…, but the quickstart daemon
// listens on ./sandbox0d.sock: the client finds it, through the config the
// daemon was started with or by the quickstart fallback.
func TestClientFindsTheDaemonTheWayItWasStarted(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	ln, err := net.Listen("unix", "sandbox0d.sock")
	require.NoError(t, err)
	srv := &http.Server{Handler: listHandler(t, nil), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	rootDeps := func(env map[string]string) clientDeps {
		return clientDeps{now: cronNow, getenv: func(k string) string { return env[k] },
			defaultSocket: func() string { return filepath.Join(dir, "run", "sandbox0d.sock") }, // absent, like /run/sandbox0d as root
			systemConfig:  filepath.Join(dir, "etc", "config.yaml")}
	}
	// The config lies next to the socket it names (a relative socket is
	// next to its config file, for the daemon and the client alike).
	quickstart := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(quickstart, []byte("backend: local\nsocket: ./sandbox0d.sock\nlisten: 127.0.0.1:8080\n"), 0o600))

	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"--config", nil, []string{"--config", quickstart, "deployments", "list"}},
		{"SANDBOX0D_CONFIG", map[string]string{envConfig: quickstart}, []string{"deployments", "list"}},
		{"quickstart fallback", nil, []string{"deployments", "list"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLIWith(t, rootDeps(tc.env), nil, tc.args...)
			require.NoError(t, res.err)
			assert.Equal(t, "No deployments.\n", res.stdout)
		})
	}

	// The system config is read when present, like serve does.
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "etc", "config.yaml"), []byte("socket: "+filepath.Join(dir, "sandbox0d.sock")+"\n"), 0o600))
	require.NoError(t, os.Chdir(t.TempDir())) // no quickstart socket here
	res := runCLIWith(t, rootDeps(nil), nil, "deployments", "list")
	require.NoError(t, res.err)
	assert.Equal(t, "No deployments.\n", res.stdout)
}

// A config without a socket sends the client to its listen address over
// TCP, with the API key; a wildcard address is reached on loopback.
func TestClientUsesTheConfigsListenAddress(t *testing.T) {
	var key string
	srv := httptest.NewServer(listHandler(t, &key))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)
	cfg := writeConfig(t, "socket: \"\"\nlisten: 0.0.0.0:"+port+"\n")
	res := runCLI(t, cronNow, map[string]string{envAPIKey: "s0d_k"}, nil, "--config", cfg, "deployments", "list")
	require.NoError(t, res.err)
	assert.Equal(t, "No deployments.\n", res.stdout)
	assert.Equal(t, "s0d_k", key)
}

// When nothing answers, the error says every place that was tried.
func TestClientSaysWhereItLooked(t *testing.T) {
	t.Chdir(t.TempDir())
	res := runCLI(t, cronNow, nil, nil, "deployments", "list")
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), "default.sock (the default socket)")
	assert.Contains(t, res.err.Error(), "./sandbox0d.sock (the quickstart's)")
	assert.Contains(t, res.err.Error(), "--config FILE")

	missing := filepath.Join(t.TempDir(), "nope.yaml")
	res = runCLI(t, cronNow, nil, nil, "--config", missing, "deployments", "list")
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), "--config: open "+missing)

	cfg := writeConfig(t, "socket: "+filepath.Join(t.TempDir(), "gone.sock")+"\n")
	res = runCLI(t, cronNow, nil, nil, "--config", cfg, "deployments", "list")
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), "(the socket in "+cfg+")")
}

// A relative socket in the config file is next to that file, as the daemon
// puts it: the client finds it from any working directory
// (./sandbox0d --config examples/local.yaml from the checkout).
func TestConfigSocketIsNextToTheConfigFile(t *testing.T) {
	confDir := t.TempDir()
	ln, err := net.Listen("unix", filepath.Join(confDir, "sandbox0d.sock"))
	require.NoError(t, err)
	srv := &http.Server{Handler: listHandler(t, nil), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	cfg := filepath.Join(confDir, "local.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("socket: ./sandbox0d.sock\n"), 0o600))
	t.Chdir(t.TempDir()) // elsewhere: a socket read against the working directory would be missing

	deps := clientDeps{now: cronNow, getenv: func(string) string { return "" },
		defaultSocket: func() string { return "" }, systemConfig: filepath.Join(confDir, "absent.yaml")}
	res := runCLIWith(t, deps, nil, "--config", cfg, "deployments", "list")
	require.NoError(t, res.err, res.stderr)
}
