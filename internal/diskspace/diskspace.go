// Package diskspace keeps a reserve on the file system of the daemon's data
// directory. Below the reserve the daemon stops taking new data (API
// writes, harness output) while it can still record what it must (the end
// of the turns it stopped, run results), instead of failing every write
// with ENOSPC once the disk is full, and it resumes by itself once space
// returns.
package diskspace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"
)

// recheck is how stale the state may be before Err looks again (statfs
// costs about a microsecond), so writes stop within about this long of the
// file system going low, and resume within as long of space returning,
// whatever the ticker of Run does.
const recheck = time.Second

// LowError says the file system is below its reserve.
type LowError struct {
	Path    string
	Free    uint64 // bytes available to the daemon
	Reserve uint64 // disk.min_free
}

func (e *LowError) Error() string {
	return fmt.Sprintf("the data directory's file system is nearly full: %d MiB free, the disk.min_free reserve is %d MiB "+
		"(free space on the file system of %s, or lower disk.min_free)", e.Free>>20, e.Reserve>>20, e.Path)
}

// Guard watches one file system. A nil *Guard watches nothing: Err is
// always nil.
type Guard struct {
	path    string
	reserve uint64
	log     *slog.Logger
	now     func() time.Time
	statfs  func(path string) (free uint64, err error)

	mu      sync.Mutex
	low     *LowError
	checked time.Time
}

// Config configures New.
type Config struct {
	// Path is a path on the file system to watch (the data dir).
	Path string
	// Reserve is the free space below which the file system is low; 0
	// disables the guard (New returns nil).
	Reserve int64
	Logger  *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Statfs returns the bytes available to unprivileged writers at path;
	// nil means statfs(2).
	Statfs func(path string) (uint64, error)
}

// New returns a guard that has checked once, or nil when Reserve is 0.
func New(cfg Config) *Guard {
	if cfg.Reserve <= 0 {
		return nil
	}
	g := &Guard{path: cfg.Path, reserve: uint64(cfg.Reserve), log: cfg.Logger, now: cfg.Now, statfs: cfg.Statfs}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.statfs == nil {
		g.statfs = statfs
	}
	g.Check()
	return g
}

func statfs(path string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	// Bavail, not Bfree: the blocks reserved for root are not the
	// daemon's to count on unless it runs as root, and then they are the
	// system's last resort.
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}

// Check looks at the file system now and logs a change (WARN when it goes
// low, INFO when it recovers). A failed statfs keeps the previous state.
func (g *Guard) Check() {
	if g == nil {
		return
	}
	free, err := g.statfs(g.path)
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.checked = now
	if err != nil {
		g.log.Warn("checking the free space of the data directory", "path", g.path, "error", err)
		return
	}
	was := g.low
	if free < g.reserve {
		g.low = &LowError{Path: g.path, Free: free, Reserve: g.reserve}
		if was == nil {
			g.log.Warn("the data directory's file system is below its reserve: API writes answer 507 and local turns that write are stopped until space returns",
				"path", g.path, "free_bytes", free, "min_free_bytes", g.reserve, "config_key", "disk.min_free")
		}
		return
	}
	g.low = nil
	if was != nil {
		g.log.Info("the data directory's file system has room again; writes resume", "path", g.path, "free_bytes", free, "min_free_bytes", g.reserve)
	}
}

// Err is nil while the file system is above its reserve, else a
// *LowError. It looks again when the last look is older than recheck.
func (g *Guard) Err() error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	stale := g.now().Sub(g.checked) >= recheck
	g.mu.Unlock()
	if stale {
		g.Check()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.low == nil {
		return nil // not a typed nil in the interface
	}
	return g.low
}

// Observe checks at once after a write failed for lack of space, so the
// next writes are refused cleanly instead of failing the same way.
func (g *Guard) Observe(err error) {
	if g != nil && errors.Is(err, syscall.ENOSPC) {
		g.Check()
	}
}

// Run checks at every tick until ctx is done.
func (g *Guard) Run(ctx context.Context, tick <-chan time.Time) {
	if g == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			g.Check()
		}
	}
}
