package local

import (
	"testing"

	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// needLimits skips unless this host enforces memory and process limits
// (root with the cgroup v1 memory and pids hierarchies, or a delegated
// cgroup v2 group), saying why.
func needLimits(t *testing.T) {
	t.Helper()
	if e := sandbox.LimitsEnforcement(); e.Memory == "" || e.Processes == "" {
		t.Skipf("this host does not enforce memory/process limits: %s", e.Problem)
	}
}

// inEnvironment picks the environment of a created session.
func inEnvironment(id string) func(*sessions.CreateRequest) {
	return func(req *sessions.CreateRequest) { req.EnvironmentID = id }
}

// A fork bomb in an environment with processes: 64 ends its session with
// an error naming the limit, while another session completes a turn.
func TestForkBombEndsTheSessionAtItsProcessLimit(t *testing.T) {
	needLimits(t)
	rig := newRig(t, []Agent{
		shAgent("agent_bomb", `echo started; bomb() { bomb | bomb & }; bomb 2>/dev/null; wait; sleep 1000`),
		shAgent("agent_quick", `echo done`),
	}, func(c *Config) {
		c.Sandbox = bubblewrap(t, c.WorkspaceDir)
		c.Environments = []Environment{{ID: testEnvironment}, {ID: "env_bomb", Limits: Limits{Processes: 64}}}
	})
	bomb := rig.create("agent_bomb", inEnvironment("env_bomb"))
	rig.waitForText(bomb, "started")
	other := rig.create("agent_quick", nil)

	rec := rig.waitDone(bomb)
	assert.Equal(t, statusTerminated, rec.Status)
	_, message := rig.sessionError(bomb)
	assert.Equal(t, "the turn exceeded its process limit of 64 (environment env_bomb)", message)

	recOther := rig.waitDone(other)
	assert.Equal(t, statusIdle, recOther.Status)
	assert.Equal(t, []string{"done"}, rig.texts(other))
}

// A harness allocating 4 GiB in an environment with memory: 256MiB ends
// its session with an error naming the limit; the backend keeps serving.
func TestAllocationEndsTheSessionAtItsMemoryLimit(t *testing.T) {
	needLimits(t)
	rig := newRig(t, []Agent{
		shAgent("agent_alloc", `echo started; perl -e '$x = "a" x (4 * 1024 * 1024 * 1024); print length($x), "\n"'; sleep 1000`),
		shAgent("agent_quick", `echo done`),
	}, func(c *Config) {
		c.Sandbox = bubblewrap(t, c.WorkspaceDir)
		c.Environments = []Environment{{ID: testEnvironment}, {ID: "env_small", Limits: Limits{Memory: 256 << 20}}}
	})
	id := rig.create("agent_alloc", inEnvironment("env_small"))
	rec := rig.waitDone(id)
	assert.Equal(t, statusTerminated, rec.Status)
	_, message := rig.sessionError(id)
	assert.Equal(t, "the turn exceeded its memory limit of 256 MiB (environment env_small)", message)
	assert.NotContains(t, rig.texts(id), "4294967296")

	other := rig.create("agent_quick", nil)
	assert.Equal(t, statusIdle, rig.waitDone(other).Status)
	assert.Equal(t, []string{"done"}, rig.texts(other))
}

// open_files is the harness's RLIMIT_NOFILE, soft and hard; an environment
// without limits gets the defaults.
func TestOpenFilesLimitIsTheHarnessRlimit(t *testing.T) {
	if sandbox.LimitsEnforcement().OpenFiles == "" {
		t.Skip("setrlimit does not work here: " + sandbox.LimitsEnforcement().Problem)
	}
	rig := newRig(t, []Agent{shAgent("agent_ulimit", `ulimit -n; ulimit -Hn`)}, func(c *Config) {
		c.Sandbox = bubblewrap(t, c.WorkspaceDir)
		c.Environments = []Environment{{ID: testEnvironment}, {ID: "env_files", Limits: Limits{OpenFiles: 200}}}
	})
	id := rig.create("agent_ulimit", inEnvironment("env_files"))
	require.Equal(t, statusIdle, rig.waitDone(id).Status, rig.dump(id))
	assert.Equal(t, []string{"200", "200"}, rig.texts(id))

	id = rig.create("agent_ulimit", nil)
	require.Equal(t, statusIdle, rig.waitDone(id).Status, rig.dump(id))
	assert.Equal(t, []string{"4096", "4096"}, rig.texts(id))
}
