package cli

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TAB completion asks the daemon over the socket the command would use:
// deployment, run and session ids, with a description each.
func TestCompletionOfIDsOverTheSocket(t *testing.T) {
	f := newFleet(t)
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"deployments_get", []string{"deployments", "get", ""}},
		{"deployments_run_prefix", []string{"deployments", "run", "depl_"}},
		{"runs_get", []string{"runs", "get", ""}},
		{"runs_list_flag", []string{"runs", "list", "--deployment", ""}},
		{"second_arg", []string{"deployments", "get", f.digest, ""}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			res := f.cli(append([]string{"__complete"}, tc.args...)...)
			require.NoError(t, res.err)
			assertGolden(t, tc.golden, f.stable(res.stdout))
		})
	}

	// Every id-taking command completes (a renamed command would silently lose it).
	root := newTestRoot(t)
	for _, path := range [][]string{
		{"deployments", "get"}, {"deployments", "pause"}, {"deployments", "unpause"}, {"deployments", "archive"},
		{"deployments", "run"}, {"deployments", "update"}, {"deployments", "runs"}, {"runs", "get"},
		{"sessions", "get"}, {"sessions", "events"}, {"sessions", "send"}, {"sessions", "interrupt"},
		{"sessions", "archive"}, {"sessions", "delete"},
	} {
		cmd, _, err := root.Find(path)
		require.NoError(t, err)
		assert.NotNil(t, cmd.ValidArgsFunction, "%v completes no ids", path)
	}
}

// Sessions complete through the same path; a daemon that is not running
// yields no candidates and no file names, quickly.
func TestCompletionOfSessionIDs(t *testing.T) {
	socket, _ := sessionsServer(t)
	res := runCLI(t, cronNow, nil, nil, "--socket", socket, "__complete", "sessions", "events", "sesn_r")
	require.NoError(t, res.err)
	assertGolden(t, "sessions_events", res.stdout)

	res = runCLI(t, cronNow, nil, nil, "--socket", t.TempDir()+"/none.sock", "__complete", "sessions", "get", "")
	require.NoError(t, res.err)
	assert.Equal(t, ":4\n", res.stdout, "no candidates, no file completion")
}

// The documented scripts exist for the three shells and call back into
// the binary for dynamic completion.
func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		root := NewRoot()
		var out strings.Builder
		root.SetOut(&out)
		root.SetArgs([]string{"completion", shell})
		require.NoError(t, root.Execute())
		assert.Contains(t, out.String(), "__complete", shell)
	}
}
