package crypto

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

const (
	identityDirMode  = 0o700
	identityFileMode = 0o600
)

// tempPath is the one scratch file used while writing path. A fixed name means
// a temp file left by a crash is found and removed by the next write instead
// of accumulating key material; writers are serialized by the bbolt lock the
// daemon and `keys rotate` hold.
func tempPath(path string) string { return path + ".tmp" }

// writeTemp writes data to path's temp file with mode 0600 and fsyncs it.
func writeTemp(path string, data []byte) (tmp string, err error) {
	tmp = tempPath(path)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("remove stale temp file %s: %w", tmp, err)
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, identityFileMode)
	if err != nil {
		return "", fmt.Errorf("create temp file %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return "", fmt.Errorf("write temp file %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return "", fmt.Errorf("fsync temp file %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("close temp file %s: %w", tmp, err)
	}
	return tmp, nil
}

// replaceFileAtomic replaces path with data so that a crash at any point
// leaves either the old or the new content on disk: temp file, fsync, rename,
// fsync the directory.
func replaceFileAtomic(path string, data []byte) error {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// createFileExclusive creates path with data only if it does not exist yet,
// atomically: readers see no file or the complete file, never a partial one.
// It reports fs.ErrExist when path already exists and never overwrites it.
func createFileExclusive(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, identityDirMode); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	tmp, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	// link(2) fails with EEXIST instead of replacing, unlike rename(2).
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s: %w", path, fs.ErrExist)
		}
		// Filesystems without hard links: check, then rename. Only the
		// daemon holding the bbolt lock gets here, so the gap is not raced.
		if _, statErr := os.Lstat(path); statErr == nil {
			return fmt.Errorf("create %s: %w", path, fs.ErrExist)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("create %s: %w", path, err)
		}
	}
	return syncDir(dir)
}

// syncDir makes a rename or link in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s for fsync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
