package local

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFullDiskDoesNotLeaveASessionRunning puts the database on a small
// tmpfs and fills it: the chatty turn's output cannot be stored, the turn
// is stopped, and the session is terminated with a session.error saying so
// (its end retried until it lands) instead of staying running.
func TestFullDiskDoesNotLeaveASessionRunning(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dataDir := t.TempDir()
	if err := syscall.Mount("tmpfs", dataDir, "tmpfs", 0, "size=20m"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dataDir, syscall.MNT_DETACH) })

	rig := newRigAt(t, filepath.Join(dataDir, "state.db"), []Agent{shAgent("agent_chatty",
		`i=0; while [ $i -lt 20000 ]; do i=$((i+1)); printf 'line %06d %0300d\n' $i 0; done`)}, nil)
	retried := make(chan error, 100)
	rig.b.endRetried = retried

	// Fill what the tmpfs has left, keeping a little for the session's start.
	filler := filepath.Join(dataDir, "filler")
	fillDisk(t, filler, 256<<10)

	id := rig.create("agent_chatty", nil)
	// The end of the turn is small: it may land at once in pages bbolt
	// already has, or fail for lack of space and be retried until the
	// filler is gone. Either way the session must not stay running.
	select {
	case err := <-retried:
		assert.True(t, errors.Is(err, syscall.ENOSPC), "the end of the turn failed for lack of space: %v", err)
		assert.NotEqual(t, statusIdle, mustGet(t, rig, id).Status, "the end has not landed yet")
		t.Log("the end of the turn was retried until space was freed")
	case <-rig.b.Done(id):
		t.Log("the end of the turn landed at once")
	}
	require.NoError(t, os.Remove(filler))
	rec := rig.waitDone(id)
	assert.Equal(t, statusTerminated, rec.Status, "a session whose output could not be stored ends")
	_, message := rig.sessionError(id)
	assert.Contains(t, message, "recording harness output")
	assert.Contains(t, message, "no space left on device")
	assert.Nil(t, rec.Process, "no process is left recorded as running")
}

// fillDisk writes a file until the filesystem has about keep bytes left.
func fillDisk(t *testing.T, path string, keep int64) {
	t.Helper()
	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs(filepath.Dir(path), &st))
	free := int64(st.Bavail) * st.Bsize
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for written := int64(0); written < free-keep; written += int64(len(chunk)) {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	require.NoError(t, f.Sync())
}
