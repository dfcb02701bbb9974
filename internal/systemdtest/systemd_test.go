package systemdtest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/packages/param"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/internal/fakemessages"
	"github.com/sandbox0/sandbox0d/internal/repotest"
)

const (
	repo = "../.."
	// Inside the container.
	srcDir         = "/root/sandbox0d-src" // where docs/install.md's install runs
	hostileHarness = "/usr/local/lib/sandbox0d-test/hostile.sh"
	echoHarness    = "/usr/local/lib/sandbox0d/echo-harness.sh" // where docs/install.md installs it
	claudeDir      = "/usr/local/lib/sandbox0d/claude-code"
	socket         = "/run/sandbox0d/sandbox0d.sock"
	// The unit shipped before bubblewrap could run under it.
	oldUnit = "../../testdata/systemd/sandbox0d-3920652.service"

	ccModel = "claude-sonnet-5-5"
	ccKey   = "sk-ant-systemd-Qz81secret"
)

// The shipped unit under a real systemd 252: the install docs/install.md
// describes, then (a) sessions whose harness tries to read the daemon's
// secrets and reach its socket get nothing, (b) a Claude Code turn (the
// pinned CLI, a JIT runtime) ends with end_turn against the scripted
// Messages API on the host's loopback, and (c) with the unit shipped at
// 3920652, whose directives stop bubblewrap, the daemon refuses to start.
func TestShippedUnitUnderSystemd(t *testing.T) {
	t.Parallel()
	rootfs := requirements(t, repo)
	repotest.TrackSources(t)
	began := time.Now()
	phase := func(what string) { t.Logf("%s done at %.1f s", what, time.Since(began).Seconds()) }
	claude, err := filepath.Abs(filepath.Join(repo, "testdata/claude-code/node_modules/@anthropic-ai/claude-code"))
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(claude, "bin/claude.exe"))
	haveClaude := err == nil

	// The binary builds while the container boots.
	install := readmeInstall(t)
	built := make(chan error, 1)
	var binary string
	go func() {
		var err error
		binary, err = daemonBinary(install.build)
		built <- err
	}()

	// What the install copies from a checkout: the sysusers file, the unit
	// and the example harness unchanged; examples/local.yaml already edited.
	src := t.TempDir()
	copyFile(t, filepath.Join(repo, "sandbox0d.sysusers"), filepath.Join(src, "sandbox0d.sysusers"), 0o644)
	copyFile(t, filepath.Join(repo, "sandbox0d.service"), filepath.Join(src, "sandbox0d.service"), 0o644)
	copyFile(t, filepath.Join(repo, "examples/echo-harness.sh"), filepath.Join(src, "examples/echo-harness.sh"), 0o755)
	fake := fakemessages.New(t, fakemessages.Options{APIKey: ccKey, Model: ccModel, Script: []fakemessages.Reply{
		{Blocks: []fakemessages.Block{fakemessages.Text("Writing it."),
			fakemessages.ToolUse("Bash", map[string]any{"command": "printf 'under the unit' > proof.txt; printenv ANTHROPIC_API_KEY > key.txt", "description": "write proof"})}},
		{Blocks: []fakemessages.Block{fakemessages.Text("proof.txt is written.")}},
	}})
	writeFile(t, filepath.Join(src, "examples/local.yaml"), config(t, haveClaude, fake.URL), 0o644)
	writeFile(t, filepath.Join(src, "anthropic.env"), "ANTHROPIC_API_KEY="+ccKey+"\n", 0o600)

	hostileScript, err := filepath.Abs("testdata/hostile.sh")
	require.NoError(t, err)
	require.FileExists(t, hostileScript) // and go test's cache notes it
	binds := []string{"--bind-ro=" + src + ":" + srcDir, "--bind-ro=" + hostileScript + ":" + hostileHarness}
	if haveClaude {
		binds = append(binds, "--bind-ro="+claude+":"+claudeDir)
	}
	c := boot(t, rootfs, binds...)
	phase("boot")
	require.NoError(t, <-built)
	copyFile(t, binary, c.path(install.binary), 0o755)
	phase("build")

	// docs/install.md's install, line for line, in a checkout's directory.
	c.run(2*time.Minute, "bash", "-euo", "pipefail", "-c", "cd "+srcDir+"\n"+install.script)
	// A vault file the config names: readable by the service's user only.
	c.run(30*time.Second, "install", "-o", "sandbox0d", "-g", "sandbox0d", "-m", "0600", srcDir+"/anthropic.env", "/etc/sandbox0d/anthropic.env")
	require.Equal(t, "active", strings.TrimSpace(c.run(30*time.Second, "systemctl", "is-active", "sandbox0d")))
	api := client(c.path(socket))
	phase("install and start")

	t.Run("sessions", func(t *testing.T) {
		t.Run("the example's echo harness", func(t *testing.T) {
			t.Parallel()
			echo(t, api)
		})
		for _, env := range []string{"env_local", "env_offline"} {
			t.Run("hostile harness in "+env, func(t *testing.T) {
				t.Parallel()
				hostile(t, api, env)
			})
		}
		t.Run("claude code turn", func(t *testing.T) {
			if !haveClaude {
				t.Skip("Claude Code is not installed: run npm ci --prefix testdata/claude-code (.ci/run does)")
			}
			t.Parallel()
			claudeTurn(t, c, api, fake)
		})
	})

	phase("sessions")
	t.Run("readyz says what confines harnesses under the unit", func(t *testing.T) {
		readiness(t, c)
	})
	t.Run("the unit's own cgroup is writable by the daemon", func(t *testing.T) {
		delegatedCgroup(t, c)
	})
	t.Run("old unit refuses to start", func(t *testing.T) {
		c.run(90*time.Second, "systemctl", "stop", "sandbox0d")
		copyFile(t, oldUnit, c.path("/etc/systemd/system/sandbox0d.service"), 0o644)
		c.run(30*time.Second, "systemctl", "daemon-reload")
		cursor := c.cursor()
		out, err := c.output(90*time.Second, "systemctl", "start", "sandbox0d")
		journal := c.journal("--after-cursor", cursor)
		defer func() { _, _ = c.output(90*time.Second, "systemctl", "stop", "sandbox0d") }()
		require.Error(t, err, "under the old unit's directives bubblewrap cannot work, and local.sandbox: auto "+
			"must refuse to start instead of running harnesses unconfined; systemctl start: %s\njournal:\n%s", out, journal)
		t.Logf("the start under the old unit:\n%s", journal)
		// The refusal quotes bwrap's own error (ProcSubset=pid hides it).
		assert.Contains(t, journal, "overflowuid", "journal:\n%s", journal)
		assert.NotContains(t, journal, "sandbox0d ready", "journal:\n%s", journal)
	})
}

// readiness checks what the daemon says of its confinement under the unit:
// the sandbox in force is bubblewrap, and each per-session limit is either
// enforced or reported as not enforced, both in /readyz and in the journal
// (never silently). On these hybrid hosts the unit's cgroup v2 group has no
// memory or pids controller, so that is what the test shows here.
func readiness(t *testing.T, c *container) {
	out := c.run(30*time.Second, "curl", "-sS", "--unix-socket", socket, "http://localhost/readyz")
	t.Logf("/readyz under the unit: %s", out)
	var body struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
		Limits map[string]string `json:"limits"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &body), out)
	assert.Equal(t, "OK", body.Status)
	assert.Equal(t, "bubblewrap", body.Checks["sandbox"])
	require.NotEmpty(t, body.Limits, "/readyz must say how limits are enforced")
	for _, k := range []string{"memory", "processes", "cpu", "open_files"} {
		assert.NotEmpty(t, body.Limits[k], "limits.%s", k)
	}
	journal := c.journal("-u", "sandbox0d")
	assert.Regexp(t, `local sessions' limits (enforced|NOT ENFORCED)`, journal)
}

// delegatedCgroup checks that the daemon's user, in the daemon's mount and
// user namespaces, can make and remove a child of the unit's cgroup (the
// v2 hierarchy; under a hybrid layout, its unified mount): Delegate=yes
// hands the subtree over, and ProtectControlGroups=yes would make it
// read-only but for the unit's ReadWritePaths=. Once in a few dozen CI runs
// the rmdir right after a successful mkdir said the probe did not exist
// (something else in the container removed it; the daemon removes only its
// own turn groups), so the probe is tried three times under fresh names:
// one clean make-and-remove shows what the test is about.
func delegatedCgroup(t *testing.T, c *container) {
	pid := strings.TrimSpace(c.run(30*time.Second, "systemctl", "show", "-p", "MainPID", "--value", "sandbox0d"))
	uid := strings.TrimSpace(c.run(30*time.Second, "id", "-u", "sandbox0d"))
	cgroup := strings.TrimSpace(c.run(30*time.Second, "sed", "-n", "s/^0:://p", "/proc/"+pid+"/cgroup"))
	require.Equal(t, "/system.slice/sandbox0d.service", cgroup)
	script := `for base in /sys/fs/cgroup/unified /sys/fs/cgroup; do
	[ -e "$base$1/cgroup.procs" ] && break
done
for i in 1 2 3; do
	probe="$base$1/systemdtest-probe-$$-$i"
	if mkdir "$probe" && rmdir "$probe"; then echo "$base$1 is writable"; exit 0; fi
done
exit 1`
	out, err := c.output(30*time.Second, "nsenter", "-t", pid, "-m", "-U", "-S", uid, "-G", uid, "--", "sh", "-c", script, "sh", cgroup)
	require.NoError(t, err, "%s", out)
	assert.Contains(t, out, "is writable")
}

// echo runs one turn of the example's harness, installed as docs/install.md says.
func echo(t *testing.T, api anthropic.Client) {
	sess, err := api.Beta.Sessions.New(context.Background(), anthropic.BetaSessionNewParams{
		Agent:         anthropic.BetaSessionNewParamsAgentUnion{OfString: param.NewOpt("agent_echo")},
		EnvironmentID: "env_local",
	})
	require.NoError(t, err)
	send(t, api, sess.ID, "hello from the unit")
	stop := awaitStop(t, api, sess.ID)
	text := messages(t, api, sess.ID)
	require.Equal(t, "session.status_idle", stop.Type, "events:\n%s", text)
	assert.Equal(t, "end_turn", stop.StopReason.Type)
	assert.Contains(t, text, "prompt: hello from the unit")
	assert.Contains(t, text, "echo-harness done")
}

// hostile runs one turn of the hostile harness and checks it got nothing.
func hostile(t *testing.T, api anthropic.Client, env string) {
	ctx := context.Background()
	sess, err := api.Beta.Sessions.New(ctx, anthropic.BetaSessionNewParams{
		Agent:         anthropic.BetaSessionNewParamsAgentUnion{OfString: param.NewOpt("agent_hostile")},
		EnvironmentID: env,
	})
	require.NoError(t, err)
	send(t, api, sess.ID, "try everything")
	stop := awaitStop(t, api, sess.ID)
	output := messages(t, api, sess.ID)
	t.Logf("the hostile harness in %s printed:\n%s", env, output)
	require.Equal(t, "session.status_idle", stop.Type, "the harness must run to its end")
	require.Contains(t, output, "hostile harness done", "the probes did not all run")
	probe := regexp.MustCompile(`(?m)^probe (\S+) (\S+): (\d+) bytes`)
	got := map[string]bool{}
	for _, m := range probe.FindAllStringSubmatch(output, -1) {
		got[m[1]] = true
		assert.Equal(t, "0", m[3], "the harness read %s (%s)", m[2], m[1])
	}
	for _, name := range []string{"credential-identity", "credential-upstream-key", "identity-file", "database", "config", "vault", "socket"} {
		assert.True(t, got[name], "no probe line for %s", name)
	}
	for _, secret := range []string{"AGE-SECRET-KEY", ccKey, "agent_hostile"} {
		assert.NotContains(t, output, secret)
	}
}

// claudeTurn runs one Claude Code turn that uses the Bash tool.
func claudeTurn(t *testing.T, c *container, api anthropic.Client, fake *fakemessages.Server) {
	ctx := context.Background()
	sess, err := api.Beta.Sessions.New(ctx, anthropic.BetaSessionNewParams{
		Agent:         anthropic.BetaSessionNewParamsAgentUnion{OfString: param.NewOpt("agent_cc")},
		EnvironmentID: "env_local", VaultIDs: []string{"vault_llm"},
	})
	require.NoError(t, err)
	send(t, api, sess.ID, "Write proof.txt")
	stop := awaitStop(t, api, sess.ID)
	evs := events(t, api, sess.ID)
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
		if ev.Type == "session.error" {
			t.Logf("session.error: %s", ev.Error.Message)
		}
	}
	require.Equal(t, "session.status_idle", stop.Type, "events %v", types)
	assert.Equal(t, "end_turn", stop.StopReason.Type)
	assert.Len(t, fake.ModelCalls(), 2, "the CLI called the model for the tool use and after its result")
	assert.Empty(t, fake.Violations())
	proof, err := os.ReadFile(c.path(filepath.Join("/var/lib/sandbox0d/workspaces", sess.ID, "proof.txt")))
	require.NoError(t, err, "the Bash tool's file in the workspace")
	assert.Equal(t, "under the unit", string(proof))
	// The key was projected: the CLI held a placeholder, and the fake,
	// which refuses any other key (Violations), got the real one.
	held, err := os.ReadFile(c.path(filepath.Join("/var/lib/sandbox0d/workspaces", sess.ID, "key.txt")))
	require.NoError(t, err)
	assert.Regexp(t, `^s0d-placeholder-[0-9a-f]{32}\n$`, string(held))
}
