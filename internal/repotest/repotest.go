// Package repotest helps tests that build the daemon from this checkout as a
// command (go build, go run) rather than link it into the test binary: the
// front-door tests (the README's commands, the packages, the systemd unit).
package repotest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Root is the checkout's root directory (where go.mod is), absolute.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// GoTool is the go command of the toolchain running the test, so that a
// build from a test uses the same Go as the test (and shares its cache).
func GoTool() string {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		return "go"
	}
	return goTool
}

// Go runs the go command in dir with the test's environment plus env and
// returns its combined output in the error when it fails.
func Go(ctx context.Context, dir string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, GoTool(), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s (in %s): %w\n%s", strings.Join(args, " "), dir, err, out)
	}
	return nil
}

// TrackSources stats every file the daemon's binary is built from. A test
// that runs go build as a command would otherwise have `go test` replay a
// cached pass after the daemon's code changed: it caches a result by the
// test binary and the files the test looked at, and such a test's binary
// holds none of the daemon. extra names more files (relative to the root)
// the test reads through a command, such as README.md.
func TrackSources(t testing.TB, extra ...string) {
	t.Helper()
	root := Root()
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "testdata", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") || d.Name() == "go.mod" || d.Name() == "go.sum" {
			_, err = os.Stat(path)
		}
		return err
	})
	if err != nil {
		t.Fatalf("tracking the daemon's sources: %v", err)
	}
	for _, f := range extra {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Fatalf("tracking %s: %v", f, err)
		}
	}
}

// Packages builds the Debian package and the tarball with the packaging
// program (packaging/, a module of its own) into out, with the given
// version and file time; it returns their paths.
func Packages(out, version string, epoch int64) (deb, tarball string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, GoTool(), "run", ".", "-repo", Root(), "-out", out, "-version", version)
	cmd.Dir = filepath.Join(Root(), "packaging")
	cmd.Env = append(os.Environ(), fmt.Sprintf("SOURCE_DATE_EPOCH=%d", epoch))
	cmd.WaitDelay = time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("go run ./packaging: %w\n%s", err, stderr.String())
	}
	paths := strings.Fields(string(stdout))
	if len(paths) != 2 || !strings.HasSuffix(paths[0], ".deb") || !strings.HasSuffix(paths[1], ".tar.gz") {
		return "", "", fmt.Errorf("go run ./packaging printed %q, want the .deb's and the tarball's paths", stdout)
	}
	return paths[0], paths[1], nil
}
