package local

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bubblewrap returns the real bubblewrap sandbox hiding the rig's data dir,
// or skips when bwrap is not installed (CI installs it).
func bubblewrap(t *testing.T, hidden ...string) sandbox.Sandbox {
	t.Helper()
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("bwrap is not installed (Debian package bubblewrap)")
	}
	sb, err := sandbox.New(sandbox.Config{Mode: sandbox.ModeBubblewrap, Hidden: hidden})
	require.NoError(t, err)
	return sb
}

// stragglerGone waits until no host process has argv containing marker.
func stragglerGone(t *testing.T, marker string) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if len(cmdlinesContaining(t, marker)) == 0 {
			return true
		}
		time.Sleep(20 * time.Millisecond) // polling the host's process table, not the scheduler
	}
	return false
}

// A hostile harness tries everything the issue reproduced without a
// sandbox. Under bubblewrap every attempt fails and nothing it started
// outlives its session.
func TestHostileHarnessIsConfined(t *testing.T) {
	// The harness lives next to the data dir (a config directory holding
	// both), so its directory is visible read-only and the data dir in it
	// is masked.
	root := t.TempDir()
	dataDir := filepath.Join(root, "data")
	identity := filepath.Join(dataDir, "keys", "identity.age.txt")
	require.NoError(t, os.MkdirAll(filepath.Dir(identity), 0o700))
	require.NoError(t, os.WriteFile(identity, []byte("AGE-SECRET-KEY-1HOSTILE"), 0o600))
	db := filepath.Join(dataDir, "sandbox0d.db")
	require.NoError(t, os.WriteFile(db, []byte("bbolt"), 0o600))
	adminSocket := filepath.Join(dataDir, "sandbox0d.sock")
	ln, err := net.Listen("unix", adminSocket)
	require.NoError(t, err)
	defer ln.Close()
	workspaces := filepath.Join(dataDir, "workspaces")
	other := filepath.Join(workspaces, "ses_other")
	require.NoError(t, os.MkdirAll(other, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(other, "secret"), []byte("other session"), 0o600))

	// A concurrent clone: git's environment holds another session's token.
	clone := exec.Command("/bin/sleep", "60")
	clone.Env = []string{"GIT_CONFIG_VALUE_0=Authorization: Basic c2VjcmV0LXRva2Vu"}
	require.NoError(t, clone.Start())
	defer func() { _ = clone.Process.Kill(); _ = clone.Wait() }()

	hostTmp := "/tmp/sandbox0d-hostile-" + strconv.Itoa(os.Getpid())
	defer os.Remove(hostTmp)
	straggler := "4242." + strconv.Itoa(os.Getpid()) // unique to this run
	script := `
try() { name=$1; shift; if "$@" >/dev/null 2>&1; then echo "ESCAPED $name"; else echo "blocked $name"; fi; }
try identity cat ` + identity + `
try database cat ` + db + `
try other-workspace cat ` + filepath.Join(other, "secret") + `
try list-workspaces sh -c 'ls ` + workspaces + ` | grep -q ses_other'
try admin-socket test -e ` + adminSocket + `
try write-data-dir sh -c 'echo x > ` + filepath.Join(dataDir, "pwned") + `'
try write-host-tmp sh -c 'echo x > ` + hostTmp + ` && test -e ` + hostTmp + ` && exit 1'
try write-usr touch /usr/pwned
try unmask sh -c 'umount ` + dataDir + ` 2>/dev/null || umount -l ` + dataDir + `; cat ` + identity + `'
try capabilities sh -c 'grep -q "^CapEff:[[:space:]]*0*$" /proc/self/status && exit 1 || exit 0'
try nested-userns unshare -U -r true
try clone-environ sh -c 'grep -q c2VjcmV0 /proc/` + strconv.Itoa(clone.Process.Pid) + `/environ'
try workspace-write sh -c 'echo ok > "$SANDBOX0D_WORKSPACE/mine" && test "$HOME" = "$SANDBOX0D_WORKSPACE/.home"' && echo "(the above must escape)"
setsid sleep ` + straggler + ` >/dev/null 2>&1 < /dev/null &
echo done
`
	harness := filepath.Join(root, "hostile.sh")
	require.NoError(t, os.WriteFile(harness, []byte("#!/bin/sh\n"+script), 0o700))
	rig := newRig(t, []Agent{{ID: "agent_hostile", Version: 1, Command: []string{harness}}}, func(c *Config) {
		c.WorkspaceDir = workspaces
		c.Sandbox = bubblewrap(t, dataDir)
	})
	id := rig.create("agent_hostile", nil)
	rec := rig.waitDone(id)
	assert.Equal(t, statusIdle, rec.Status, rig.dump(id))
	texts := strings.Join(rig.texts(id), "\n")
	for _, name := range []string{"identity", "database", "other-workspace", "list-workspaces", "admin-socket",
		"write-usr", "clone-environ", "unmask", "capabilities", "nested-userns"} {
		assert.Contains(t, texts, "blocked "+name, texts)
	}
	// The test's data dir lives under /tmp, so inside the sandbox its path
	// is in the private /tmp: writable there, invisible to the host. What
	// matters is the host's side.
	assert.NoFileExists(t, hostTmp, "the harness wrote the host's /tmp")
	assert.NoFileExists(t, filepath.Join(dataDir, "pwned"), "the harness wrote into the data dir")
	assert.Contains(t, texts, "ESCAPED workspace-write", "the workspace is writable and HOME is inside it")
	assert.FileExists(t, filepath.Join(workspaces, id, "mine"))
	for _, line := range strings.Split(texts, "\n") {
		if strings.HasPrefix(line, "ESCAPED ") && line != "ESCAPED workspace-write" && line != "ESCAPED write-data-dir" {
			t.Errorf("hostile harness: %s", line)
		}
	}
	assert.Contains(t, texts, "done")
	assert.True(t, stragglerGone(t, straggler), "a setsid child outlived its session: %v", cmdlinesContaining(t, straggler))
}

// Without a sandbox the backend does its best: the process group and then
// any process still carrying the session's marker in its environment.
func TestNoSandboxKillsSetsidStragglersByMarker(t *testing.T) {
	straggler := "4343." + strconv.Itoa(os.Getpid()) // unique to this run
	rig := newRig(t, []Agent{shAgent("agent_escape", `setsid sleep `+straggler+` >/dev/null 2>&1 </dev/null & echo started`)},
		func(c *Config) { c.Sandbox = sandbox.None{} })
	id := rig.create("agent_escape", nil)
	rig.waitDone(id)
	assert.True(t, stragglerGone(t, straggler), "a setsid child outlived its session: %v", cmdlinesContaining(t, straggler))
}

// A limited network with no sandbox to enforce it fails the session; the
// harness never runs with an open network.
func TestLimitedNetworkWithoutSandboxFailsClosed(t *testing.T) {
	rig := newRig(t, []Agent{shAgent("agent_net", `echo should not run`)}, func(c *Config) {
		c.Sandbox = sandbox.None{}
		c.Environments = []Environment{{ID: testEnvironment, Networking: Networking{Type: NetworkingLimited,
			AllowedHosts: []string{"api.example.com"}}}}
	})
	id := rig.create("agent_net", func(*sessions.CreateRequest) {})
	rec := rig.waitDone(id)
	assert.Equal(t, statusTerminated, rec.Status)
	_, message := rig.sessionError(id)
	assert.Contains(t, message, "limited")
	assert.Contains(t, message, testEnvironment)
	assert.NotContains(t, rig.texts(id), "should not run")
}

// Under bubblewrap a command harness sees its program file, not its
// directory; what else it needs is named by the agent's read_only.
func TestAgentReadOnlyPaths(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "lib")
	require.NoError(t, os.MkdirAll(lib, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(lib, "greeting"), []byte("hello from lib"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte("neighbour"), 0o600))
	harness := filepath.Join(dir, "run.sh")
	require.NoError(t, os.WriteFile(harness, []byte("#!/bin/sh\ncat "+lib+"/greeting\ncat "+dir+"/secret 2>/dev/null || echo no-neighbour\n"), 0o755))
	rig := newRig(t, []Agent{{ID: "agent_ro", Version: 1, Command: []string{harness}, ReadOnly: []string{lib}}}, func(c *Config) {
		c.Sandbox = bubblewrap(t)
	})
	id := rig.create("agent_ro", nil)
	rec := rig.waitDone(id)
	assert.Equal(t, statusIdle, rec.Status, rig.dump(id))
	texts := strings.Join(rig.texts(id), "\n")
	assert.Contains(t, texts, "hello from lib")
	assert.Contains(t, texts, "no-neighbour")
	assert.NotContains(t, texts, "neighbour\n")
}

// read_only entries must be absolute and exist.
func TestAgentReadOnlyValidated(t *testing.T) {
	cfg := Config{WorkspaceDir: t.TempDir(), Agents: []Agent{{ID: "a", Command: []string{"true"},
		ReadOnly: []string{"relative/dir", filepath.Join(t.TempDir(), "missing")}}}}
	err := cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "local.agents[0].read_only[0]")
	assert.Contains(t, err.Error(), "local.agents[0].read_only[1]")
}
