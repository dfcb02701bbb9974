// Package tssdktest runs the scripts of testdata/tssdk with node and the
// pinned official TypeScript SDK, for tests that drive a real server through
// that SDK. Tests skip, saying why, where node or the SDK is not installed
// (.ci/run installs both).
package tssdktest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Node runs scripts of testdata/tssdk.
type Node struct {
	node, dir string
}

// Require skips t unless node and the SDK (npm ci --prefix testdata/tssdk)
// are installed; call it before building what the script talks to.
func Require(t testing.TB) Node {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "tssdk")
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@anthropic-ai", "sdk")); err != nil {
		t.Skip("TypeScript SDK not installed: run npm ci --prefix testdata/tssdk")
	}
	return Node{node: node, dir: dir}
}

// Run runs script (a file of testdata/tssdk) with the test's environment
// plus env, and returns what it printed; a script that fails fails t with
// its stderr.
func (n Node) Run(t testing.TB, script string, env ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), n.node, script)
	cmd.Dir = n.dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Fatalf("node %s: %v\n%s", script, err, stderr)
	}
	return out
}
