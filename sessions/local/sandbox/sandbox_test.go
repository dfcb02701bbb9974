package sandbox

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// needBwrap returns a working bubblewrap sandbox or skips the test when
// bwrap is not installed (CI installs it).
func needBwrap(t *testing.T, cfg Config) *Bubblewrap {
	t.Helper()
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("bwrap is not installed (Debian package bubblewrap)")
	}
	bw, err := newBubblewrap(cfg)
	require.NoError(t, err)
	return bw
}

// run runs a shell script through sb in a fresh workspace and returns its
// stdout and the workspace.
func run(t *testing.T, sb Sandbox, spec Spec, script string) (string, error) {
	t.Helper()
	if spec.Workspace == "" {
		spec.Workspace = t.TempDir()
	}
	spec.Argv = []string{"/bin/sh", "-c", script}
	if spec.Env == nil {
		spec.Env = []string{"PATH=/usr/bin:/bin"}
	}
	p, err := sb.Command(spec)
	require.NoError(t, err)
	var out bytes.Buffer
	p.Cmd.Stdout = &out
	p.Cmd.Stderr = os.Stderr
	require.NoError(t, p.Start())
	err = p.Wait()
	return out.String(), err
}

func TestBubblewrapSeesOnlyWorkspaceAndSystem(t *testing.T) {
	bw := needBwrap(t, Config{})
	secretDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(secretDir, "secret"), []byte("s"), 0o600))
	ws := t.TempDir()
	out, err := run(t, bw, Spec{SessionID: "ses_1", Workspace: ws, Home: filepath.Join(ws, ".home")},
		`echo "home=$HOME tmp=$TMPDIR pid=$$"; ls `+secretDir+` 2>&1; touch `+ws+`/written && echo wrote; touch /usr/x 2>/dev/null || echo ro`)
	require.NoError(t, err)
	assert.Contains(t, out, "home="+ws+"/.home tmp=/tmp")
	assert.Contains(t, out, "No such file")
	assert.Contains(t, out, "wrote")
	assert.Contains(t, out, "ro")
	assert.FileExists(t, filepath.Join(ws, "written"))
	assert.False(t, strings.Contains(out, "pid=1 "), out)
}

func TestNoneRefusesLimitedNetwork(t *testing.T) {
	_, err := None{}.Command(Spec{Argv: []string{"true"}, Workspace: t.TempDir(), Network: Network{Limited: true, Environment: "env"}})
	require.ErrorIs(t, err, ErrNetworkPolicy)
	// Nor does it run a proxied unrestricted one on the host network,
	// where the proxy would be bypassed.
	_, err = None{}.Command(Spec{Argv: []string{"true"}, Workspace: t.TempDir(), Network: Network{Proxied: true, Environment: "env"}})
	require.ErrorIs(t, err, ErrNetworkPolicy)
	assert.ErrorContains(t, err, "projected")
}

// Signal reaches the harness inside the PID namespace, so SIGTERM gives it
// its grace period (bwrap itself would just die and take it along).
func TestBubblewrapSignalReachesTheHarness(t *testing.T) {
	bw := needBwrap(t, Config{})
	p, err := bw.Command(Spec{SessionID: "ses_sig", Workspace: t.TempDir(), Env: []string{"PATH=/usr/bin:/bin"},
		Argv: []string{"/bin/sh", "-c", `trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 0.05; done`}})
	require.NoError(t, err)
	stdout, err := p.Cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, p.Start())
	buf := make([]byte, 6)
	_, err = io.ReadFull(stdout, buf)
	require.NoError(t, err)
	require.Equal(t, "ready\n", string(buf))
	require.NoError(t, p.Signal(syscall.SIGTERM))
	rest, _ := io.ReadAll(stdout)
	require.NoError(t, p.Wait(), "the harness exits 0 from its trap")
	assert.Equal(t, "got TERM\n", string(rest))
}

// Root-only host files under /etc stay out of sight even for a daemon
// running as root.
func TestBubblewrapMasksHostSecrets(t *testing.T) {
	bw := needBwrap(t, Config{})
	out, err := run(t, bw, Spec{SessionID: "ses_etc"}, `cat /etc/shadow 2>/dev/null | wc -c; cat /etc/ssh/ssh_host_*_key 2>/dev/null | wc -c; test -r /etc/passwd && echo passwd`)
	require.NoError(t, err)
	assert.Equal(t, "0\n0\npasswd\n", out)
}
