package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ListenSocket creates the Unix socket at path with mode 0660. It is bound
// inside a fresh private (0700) directory beside path, chmodded there, and
// only then linked into place, so it never exists at path with wider
// permissions, without touching the process-wide umask (which would change
// the mode of every file and directory created meanwhile by other
// goroutines and of every child forked meanwhile). A stale socket (nothing
// answers) is replaced; a live one or a non-socket file at the path is an
// error and is never removed. Closing the listener removes the socket.
func ListenSocket(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("socket path %s exists and is not a socket; refusing to remove it", path)
		}
		conn, err := net.DialTimeout("unix", path, 500*time.Millisecond)
		if err == nil {
			_ = conn.Close()
			return nil, fmt.Errorf("socket %s is in use: another sandbox0d is answering on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("socket path %s: %w", path, err)
	}
	// Mode 0700 whatever the umask. The names are short: a socket path is
	// limited to 107 bytes, and dir/.sNNNNNNNNNN/s is no longer than
	// dir/sandbox0d.sock.
	private, err := os.MkdirTemp(dir, ".s")
	if err != nil {
		return nil, fmt.Errorf("listen on socket %s: %w", path, err)
	}
	defer func() { _ = os.RemoveAll(private) }()
	tmp := filepath.Join(private, "s")
	l, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("listen on socket %s: %w", path, err)
	}
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(false) // it is unlinked at path instead (socketListener.Close)
	if err := os.Chmod(tmp, 0o660); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("chmod socket %s: %w", path, err)
	}
	// A hard link, unlike a rename, never replaces what appeared at path
	// since the check above.
	if err := os.Link(tmp, path); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("listen on socket %s: %w", path, err)
	}
	return &socketListener{UnixListener: ul, path: path}, nil
}

// socketListener removes its socket file when closed, as net.UnixListener
// does for the path it was bound at.
type socketListener struct {
	*net.UnixListener
	path string
	once sync.Once
}

func (l *socketListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() { _ = os.Remove(l.path) })
	return err
}
