package diskspace

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type fakeFS struct {
	mu   sync.Mutex
	free uint64
	now  time.Time
}

func (f *fakeFS) statfs(string) (uint64, error) { f.mu.Lock(); defer f.mu.Unlock(); return f.free, nil }
func (f *fakeFS) clock() time.Time              { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
func (f *fakeFS) set(free uint64, advance time.Duration) {
	f.mu.Lock()
	f.free, f.now = free, f.now.Add(advance)
	f.mu.Unlock()
}

// The guard goes low below the reserve, says how much is free and what the
// reserve is, looks again when its state is stale or a write hit ENOSPC,
// and logs each change once.
func TestGuardGoesLowAndRecovers(t *testing.T) {
	fs := &fakeFS{free: 1 << 30, now: time.Unix(1_800_000_000, 0)}
	var logs bytes.Buffer
	g := New(Config{Path: "/data", Reserve: 256 << 20, Statfs: fs.statfs, Now: fs.clock, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, g.Err())

	fs.set(100<<20, 0)
	assert.NoError(t, g.Err(), "a fresh look is reused for a second")
	g.Observe(fmt.Errorf("write: %w", syscall.ENOSPC))
	err := g.Err()
	var low *LowError
	require.True(t, errors.As(err, &low))
	assert.Equal(t, "the data directory's file system is nearly full: 100 MiB free, the disk.min_free reserve is 256 MiB "+
		"(free space on the file system of /data, or lower disk.min_free)", err.Error())

	fs.set(300<<20, 500*time.Millisecond)
	assert.Error(t, g.Err(), "still within a second of the last look")
	fs.set(300<<20, time.Second)
	assert.NoError(t, g.Err(), "space returned")
	assert.Equal(t, 1, bytes.Count(logs.Bytes(), []byte("level=WARN")))
	assert.Equal(t, 1, bytes.Count(logs.Bytes(), []byte("has room again")))

	var none *Guard
	assert.NoError(t, none.Err())
	assert.Nil(t, New(Config{Path: "/data", Reserve: 0}), "disk.min_free 0 disables the guard")
}
