package quickstarttest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/internal/repotest"
	"github.com/sandbox0/sandbox0d/internal/tssdktest"
)

// checkout is a scratch copy of what the README's commands touch (examples/
// and the built binary), so that the daemon's socket and data land there and
// not in the real checkout.
type scratch struct {
	dir  string
	env  []string // the newcomer's shell: the test's environment without SANDBOX0D_*
	port int      // the example's TCP listener, moved off 8080
}

// The README's front door, run as written: the serve block, the tour (CLI),
// the curl block, and the SDK programs of docs/api.md, against one daemon on
// examples/local.yaml.
func TestREADMEQuickstart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon; skipped in -short")
	}
	for _, tool := range []string{"bash", "jq", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the README's tour uses %s, which is not installed (Debian package %s; .ci/run installs it)", tool, tool)
		}
	}
	if _, err := exec.LookPath("bwrap"); err != nil && runtime.GOOS == "linux" {
		t.Skip("the README's daemon needs bubblewrap on Linux (local.sandbox: auto refuses to start without it; " +
			"Debian package bubblewrap, .ci/run installs it)")
	}
	t.Parallel()
	repotest.TrackSources(t, "README.md", "docs/api.md", "examples/local.yaml", "examples/deployment.json",
		"examples/echo-harness.sh", "testdata/tssdk/quickstart.mjs")
	readme := markedBlocks(t, "README.md")
	api := markedBlocks(t, "docs/api.md")
	co := newCheckout(t)

	serve := need(t, readme, "README.md", "serve", "sh")
	co.buildAndServe(t, serve)

	output := need(t, readme, "README.md", "output of a run", "text")
	want := maskTimes(output)
	wantTypes := eventTypes(t, output)

	t.Run("tour", func(t *testing.T) {
		tour := need(t, readme, "README.md", "tour", "sh")
		// The ids the tour captured, printed after it for the checks below.
		out := co.bash(t, tour+"\necho \"captured D=$D S=$S\"\n")
		m := regexp.MustCompile(`captured D=(depl_\w+) S=(sesn_\w+)\n`).FindStringSubmatch(out)
		require.NotNil(t, m, "the tour's D and S are not a deployment and a session id; it printed:\n%s", out)
		d, s := m[1], m[2]
		assert.Regexp(t, `(?m)^`+d+`\s+hello-every-5-minutes\s+active\s`, out, "deployments list shows the deployment")
		// deployments run --follow, then sessions events -f: the README's
		// output twice (only the times differ).
		assert.Equal(t, 2, strings.Count(maskTimes(out), want),
			"the README shows this output of a run:\n%s\nthe tour printed:\n%s", output, out)
		assert.Regexp(t, `(?m)^drun_\w+\s+`+d+`\s+manual\s+`+s+`\s`, out, "runs list --deployment shows the run of the captured session")
	})

	t.Run("curl", func(t *testing.T) {
		out := co.bash(t, need(t, readme, "README.md", "curl", "sh"))
		assert.Equal(t, wantTypes, strings.Fields(out), "the curl block lists the session's event types")
	})

	t.Run("go sdk", func(t *testing.T) {
		// docs/api.md: "in the checkout (whose go.mod pins the SDK), save it as
		// sdkex/main.go and run go run ./sdkex".
		program := need(t, api, "docs/api.md", "go sdk", "go")
		for _, f := range []string{"go.mod", "go.sum"} {
			data, err := os.ReadFile(filepath.Join(repotest.Root(), f))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(co.dir, f), data, 0o644))
		}
		require.NoError(t, os.MkdirAll(filepath.Join(co.dir, "sdkex"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(co.dir, "sdkex", "main.go"), []byte(program), 0o644))
		out := co.run(t, 3*time.Minute, repotest.GoTool(), "run", "./sdkex")
		assert.Regexp(t, `^run drun_\w+ session sesn_\w+\n(drun_\w+ sesn_\w+\n)+$`, out)
	})

	t.Run("typescript sdk", func(t *testing.T) {
		tssdktest.Require(t)
		block := need(t, api, "docs/api.md", "typescript sdk", "sh")
		// npm ci has run (tssdktest.Require checked); the script runs from the
		// real checkout's testdata/tssdk, linked into the scratch copy.
		npm, rest, _ := strings.Cut(block, "\n")
		require.Equal(t, "npm ci --prefix testdata/tssdk", npm, "the TypeScript block starts with the SDK's install")
		require.NoError(t, os.MkdirAll(filepath.Join(co.dir, "testdata"), 0o755))
		require.NoError(t, os.Symlink(filepath.Join(repotest.Root(), "testdata", "tssdk"), filepath.Join(co.dir, "testdata", "tssdk")))
		// The terminal of the tour: SANDBOX0D_CONFIG exported. The script
		// alone is told the listener's port, which is not 8080 here (the CLI's
		// apikeys create needs the socket).
		const node = "\nnode testdata/tssdk/quickstart.mjs"
		require.Contains(t, rest, node, "the TypeScript block runs quickstart.mjs")
		rest = strings.Replace(rest, node, fmt.Sprintf("\nSANDBOX0D_ADDR=http://127.0.0.1:%d ", co.port)+node[1:], 1)
		out := co.bash(t, rest, "SANDBOX0D_CONFIG="+filepath.Join(co.dir, "examples", "local.yaml"))
		assert.Regexp(t, `(?m)^deployment depl_\w+ next \d{4}-\d\d-\d\dT`, out)
		assert.Regexp(t, `(?m)^run drun_\w+ session sesn_\w+$`, out)
		var types []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[2:] {
			types = append(types, strings.Fields(line)[0])
		}
		assert.Equal(t, wantTypes, types, "quickstart.mjs lists the session's events; it printed:\n%s", out)
	})
}

// newCheckout copies examples/ into a scratch directory, with the example's
// TCP listener on a free port (8080 may be taken where tests run).
func newCheckout(t *testing.T) *scratch {
	t.Helper()
	co := &scratch{dir: t.TempDir()}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SANDBOX0D_") {
			co.env = append(co.env, kv)
		}
	}
	src := filepath.Join(repotest.Root(), "examples")
	entries, err := os.ReadDir(src)
	require.NoError(t, err)
	require.NoError(t, os.Mkdir(filepath.Join(co.dir, "examples"), 0o755))
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		info, err := e.Info()
		require.NoError(t, err)
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		if e.Name() == "local.yaml" {
			co.port = freePort(t)
			listen := regexp.MustCompile(`(?m)^listen: 127\.0\.0\.1:8080\b`)
			require.Regexp(t, listen, string(data), "examples/local.yaml no longer listens on 127.0.0.1:8080; "+
				"this test moves that listener to a free port")
			data = listen.ReplaceAll(data, []byte(fmt.Sprintf("listen: 127.0.0.1:%d", co.port)))
		}
		require.NoError(t, os.WriteFile(filepath.Join(co.dir, "examples", e.Name()), data, info.Mode().Perm()))
	}
	return co
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// buildAndServe runs the README's serve block: its go build in the real
// checkout (the binary lands in the scratch copy), then the daemon from the
// scratch copy, stopped with SIGTERM when the test ends.
func (co *scratch) buildAndServe(t *testing.T, block string) {
	t.Helper()
	build, serve, ok := strings.Cut(strings.TrimSpace(block), " && ")
	require.True(t, ok && !strings.Contains(serve, "\n"), "the serve block is one line, `go build … && ./sandbox0d serve …`: %q", block)
	args := strings.Fields(build)
	require.True(t, len(args) > 2 && args[0] == "go" && args[1] == "build", "the serve block starts with go build: %q", build)
	binary := ""
	for i := range args {
		if args[i] == "-o" && i+1 < len(args) {
			binary = args[i+1]
			args[i+1] = filepath.Join(co.dir, binary)
		}
	}
	require.NotEmpty(t, binary, "the serve block's go build names no -o: %q", build)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	require.NoError(t, repotest.Go(ctx, repotest.Root(), nil, args[1:]...))

	argv := strings.Fields(serve)
	require.Equal(t, "./"+binary, argv[0], "the serve block runs the binary it built")
	var log strings.Builder
	daemon := exec.Command(filepath.Join(co.dir, binary), argv[1:]...)
	daemon.Dir, daemon.Env = co.dir, co.env
	daemon.Stdout, daemon.Stderr = &log, &log
	require.NoError(t, daemon.Start())
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	t.Cleanup(func() {
		_ = daemon.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = daemon.Process.Kill()
			<-exited
			t.Errorf("the daemon did not stop within 30 s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("the daemon's log:\n%s", log.String())
		}
	})

	// Ready when /readyz answers 200 on the socket the README says it makes.
	socket := filepath.Join(co.dir, "examples", "sandbox0d.sock")
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	require.Eventually(t, func() bool {
		select {
		case err := <-exited:
			exited <- err
			return true
		default:
		}
		resp, err := hc.Get("http://localhost/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, time.Minute, 50*time.Millisecond, "the daemon did not become ready at %s", socket)
	select {
	case err := <-exited:
		t.Fatalf("the daemon exited: %v\n%s", err, log.String())
	default:
	}
}

// bash runs a block as a newcomer pastes it into bash, in the scratch
// checkout, stopping at the first failing command; it returns stdout.
func (co *scratch) bash(t *testing.T, script string, env ...string) string {
	t.Helper()
	return co.run(t, 2*time.Minute, "bash", append([]string{"-euo", "pipefail", "-c", script}, env...)...)
}

// run runs argv in the scratch checkout; for bash the arguments after the
// script are extra environment, not arguments.
func (co *scratch) run(t *testing.T, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	env := co.env
	if name == "bash" && len(args) > 3 {
		env = append(append([]string(nil), env...), args[4:]...)
		args = args[:4]
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = co.dir, env
	cmd.WaitDelay = time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "%s %s\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), out, stderr.String())
	return string(out)
}

var (
	timestamp = regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  `)
	sessionID = regexp.MustCompile(`\bsesn_\w+`)
	checkout  = regexp.MustCompile(`/\S*/examples/sandbox0d-data/`)
)

// maskTimes replaces what differs between runs of the same tour: the time at
// the start of each event line, the session's id and where the checkout is.
func maskTimes(s string) string {
	s = timestamp.ReplaceAllString(s, "YYYY-MM-DD hh:mm:ss  ")
	s = sessionID.ReplaceAllString(s, "sesn_ID")
	return checkout.ReplaceAllString(s, "CHECKOUT/examples/sandbox0d-data/")
}

// eventTypes are the event types of the README's output of a run, in order.
func eventTypes(t *testing.T, output string) []string {
	t.Helper()
	var types []string
	for _, line := range strings.Split(strings.TrimSpace(output), "\n") {
		f := strings.Fields(line)
		require.True(t, len(f) >= 3 && timestamp.MatchString(line), "the README's output of a run has a line that is not `date time  type …`: %q", line)
		types = append(types, f[2])
	}
	return types
}
