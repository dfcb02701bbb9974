package daemon_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/packages/param"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/sessions/local/sandbox"
)

// Under load from one session (a fork bomb, a 4 GiB allocation) the API's
// /livez and a retrieve keep answering, another session completes a turn,
// and the loaded session ends with a session.error naming its limit.
func TestOneSessionOverItsLimitsDoesNotStarveTheDaemon(t *testing.T) {
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("bwrap is not installed (Debian package bubblewrap)")
	}
	if e := sandbox.LimitsEnforcement(); e.Memory == "" || e.Processes == "" {
		t.Skipf("this host does not enforce memory/process limits: %s", e.Problem)
	}
	t.Parallel()
	dir := t.TempDir()
	cfg := baseConfig(dir)
	cfg.Backend = "local"
	sh := func(id, script string) daemon.LocalAgent {
		return daemon.LocalAgent{ID: id, Version: 1, Command: []string{"/bin/sh", "-c", script}}
	}
	cfg.Local = daemon.LocalConfig{
		Sandbox: "bubblewrap",
		Agents: []daemon.LocalAgent{
			sh("agent_bomb", `echo started; bomb() { bomb | bomb & }; bomb 2>/dev/null; wait; sleep 1000`),
			sh("agent_alloc", `echo started; perl -e '$x = "a" x (4 * 1024 * 1024 * 1024); print length($x), "\n"'; sleep 1000`),
			sh("agent_quick", `echo done`),
		},
		Environments: []daemon.LocalEnvironment{
			{ID: "env_bomb", Limits: daemon.LocalLimits{Processes: 64}},
			{ID: "env_small", Limits: daemon.LocalLimits{Memory: "256MiB"}},
			{ID: "env_plain"},
		},
		WorkspaceDir: filepath.Join(dir, "workspaces"),
	}
	r := start(t, cfg, daemon.Options{})
	c := r.client()
	sock := socketClient(cfg.Socket)
	ctx := context.Background()

	run := func(agent, env string) string {
		sess, err := c.Beta.Sessions.New(ctx, anthropic.BetaSessionNewParams{
			Agent: anthropic.BetaSessionNewParamsAgentUnion{OfString: param.NewOpt(agent)}, EnvironmentID: env})
		require.NoError(t, err)
		_, err = c.Beta.Sessions.Events.Send(ctx, sess.ID, anthropic.BetaSessionEventSendParams{
			Events: []anthropic.BetaManagedAgentsEventParamsUnion{userMessage("go")}})
		require.NoError(t, err)
		return sess.ID
	}
	rig := &ccRig{r: r, c: c, cfg: cfg}
	for _, tc := range []struct{ agent, env, message string }{
		{"agent_bomb", "env_bomb", "the turn exceeded its process limit of 64 (environment env_bomb)"},
		{"agent_alloc", "env_small", "the turn exceeded its memory limit of 256 MiB (environment env_small)"},
	} {
		loaded := run(tc.agent, tc.env)
		other := run("agent_quick", "env_plain")

		status, _ := do(t, sock, "GET", "http://s/livez", "", nil)
		assert.Equal(t, 200, status, "/livez while %s runs", tc.agent)
		_, err := c.Beta.Sessions.Get(ctx, loaded, anthropic.BetaSessionGetParams{})
		require.NoError(t, err, "a retrieve while %s runs", tc.agent)

		stop := rig.awaitStop(t, other, 1)
		assert.Equal(t, "session.status_idle", stop.Type)
		assert.Equal(t, "end_turn", stop.StopReason.Type)

		stop = rig.awaitStop(t, loaded, 1)
		assert.Equal(t, "session.status_terminated", stop.Type, tc.agent)
		var messages []string
		for _, ev := range rig.events(t, loaded) {
			if ev.Type == "session.error" {
				messages = append(messages, ev.AsSessionError().Error.Message)
			}
		}
		assert.Equal(t, []string{tc.message}, messages, tc.agent)
	}
	status, _ := do(t, sock, "GET", "http://s/livez", "", nil)
	assert.Equal(t, 200, status)
}
