package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// harness holds what every scenario shares: the repository, the built
// binary, a scratch directory, and the daemons it started (so an early exit
// never leaves one running).
type harness struct {
	root    string // repository root (where go.mod is)
	tmp     string // scratch directory for data dirs and logs
	keep    bool
	daemon  launcher
	started time.Time

	mu    sync.Mutex
	procs []*daemonProc
}

func newHarness(ctx context.Context, keep bool) (*harness, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "sandbox0d-bench-")
	if err != nil {
		return nil, err
	}
	h := &harness{root: root, tmp: tmp, keep: keep, started: time.Now()}
	bin := filepath.Join(tmp, "sandbox0d")
	h.logf("building %s", bin)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, fmt.Errorf("go build: %w\n%s", err, out.String())
	}
	h.daemon = launcher{path: bin}
	return h, nil
}

// buildRevision builds the daemon of git revision rev (a commit, tag or
// branch of this repository) into the scratch directory: the tree of rev is
// exported with git archive (the working tree is untouched) and built with
// the same Go toolchain. It returns a launcher for that binary and the
// revision's short commit id.
func (h *harness) buildRevision(ctx context.Context, rev string) (launcher, string, error) {
	short, err := exec.CommandContext(ctx, "git", "-C", h.root, "rev-parse", "--short", rev+"^{commit}").Output()
	if err != nil {
		return launcher{}, "", fmt.Errorf("git rev-parse %s: %w", rev, err)
	}
	id := strings.TrimSpace(string(short))
	src := filepath.Join(h.tmp, "baseline-"+id)
	if err := os.MkdirAll(src, 0o755); err != nil {
		return launcher{}, "", err
	}
	h.logf("building baseline %s (%s) in %s", rev, id, src)
	archive := exec.CommandContext(ctx, "sh", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", h.root, id, src)
	if out, err := archive.CombinedOutput(); err != nil {
		return launcher{}, "", fmt.Errorf("git archive %s: %w\n%s", id, err, out)
	}
	bin := filepath.Join(h.tmp, "sandbox0d-"+id)
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		return launcher{}, "", fmt.Errorf("go build %s: %w\n%s", id, err, out)
	}
	return launcher{path: bin}, id, nil
}

// repoRoot walks up from the working directory to the sandbox0d module.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(data, []byte("module github.com/sandbox0/sandbox0d\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the sandbox0d repository (no go.mod for github.com/sandbox0/sandbox0d above the working directory)")
		}
		dir = parent
	}
}

// dir makes a fresh directory under the scratch directory.
func (h *harness) dir(name string) string {
	d, err := os.MkdirTemp(h.tmp, name+"-")
	if err != nil {
		panic(err) // the scratch directory vanished: nothing sensible to do
	}
	return d
}

// start launches a daemon and remembers it for cleanup.
func (h *harness) start(ctx context.Context, cfg daemonConfig) (*daemonProc, error) {
	return h.startWith(ctx, h.daemon, cfg)
}

// startWith launches a daemon from another build (an A/B baseline).
func (h *harness) startWith(ctx context.Context, l launcher, cfg daemonConfig) (*daemonProc, error) {
	p, err := l.start(ctx, cfg)
	if p != nil {
		h.mu.Lock()
		h.procs = append(h.procs, p)
		h.mu.Unlock()
	}
	return p, err
}

// spawn launches a daemon without waiting for it, and remembers it.
func (h *harness) spawn(cfg daemonConfig) (*daemonProc, error) {
	p, err := h.daemon.spawn(cfg)
	if p != nil {
		h.mu.Lock()
		h.procs = append(h.procs, p)
		h.mu.Unlock()
	}
	return p, err
}

func (h *harness) close() {
	h.mu.Lock()
	procs := h.procs
	h.mu.Unlock()
	for _, p := range procs {
		p.kill()
	}
	if h.keep {
		h.logf("kept %s", h.tmp)
		return
	}
	_ = os.RemoveAll(h.tmp)
}

// logf prints a progress line with the elapsed time.
func (h *harness) logf(format string, args ...any) {
	el := time.Duration(0)
	if h != nil {
		el = time.Since(h.started).Truncate(100 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "[%8s] %s\n", el, strings.TrimRight(fmt.Sprintf(format, args...), "\n"))
}
