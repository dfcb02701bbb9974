package systemdtest

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// The daemon's binary, built once for every test of the package that
// installs it as docs/install.md does (a link of the daemon costs seconds
// on CI's two cores), into a directory TestMain removes.
var shared struct {
	once   sync.Once
	dir    string
	binary string
	err    error
}

// daemonBinary builds the daemon with docs/install.md's go build arguments
// (the first caller's) and returns its path.
func daemonBinary(args []string) (string, error) {
	shared.once.Do(func() {
		if shared.dir, shared.err = os.MkdirTemp("", "sandbox0d-systemdtest-"); shared.err != nil {
			return
		}
		shared.binary = filepath.Join(shared.dir, "sandbox0d")
		shared.err = goBuild(args, shared.binary)
	})
	return shared.binary, shared.err
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}
