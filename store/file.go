package store

import (
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Whole-file operations on a database that no daemon has open: the check a
// backup must pass, and the offline compaction.

// verifyLockTimeout bounds the wait for the file lock in VerifyFile: nothing
// else should hold a fresh backup file, so a long wait means something is
// wrong.
const verifyLockTimeout = 5 * time.Second

// maxQuotedProblems is how many consistency problems a CorruptError quotes.
const maxQuotedProblems = 5

// CorruptError is VerifyFile's verdict on a file that opens but is not
// consistent.
type CorruptError struct {
	Path     string
	Total    int     // problems found
	Problems []error // the first few of them
}

func (e *CorruptError) Error() string {
	problems := e.Problems
	if e.Total > len(problems) {
		problems = append(problems[:len(problems):len(problems)], fmt.Errorf("and %d more problems", e.Total-len(problems)))
	}
	if e.Total == 1 {
		return fmt.Sprintf("%s: %v", e.Path, errors.Join(problems...))
	}
	return fmt.Sprintf("%d problems in %s: %v", e.Total, e.Path, errors.Join(problems...))
}

// VerifyFile opens path read-only and runs bbolt's consistency check over
// every page. It returns nil for a sound file, a *CorruptError for one that
// opens but is damaged (a truncated file is one problem), or another error
// when the file is not a bbolt database at all.
func VerifyFile(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: verifyLockTimeout})
	if err != nil {
		return fmt.Errorf("open %s as a bbolt database: %w", path, err)
	}
	defer db.Close()
	corrupt := &CorruptError{Path: path}
	err = db.View(func(tx *bolt.Tx) error {
		// A file shorter than the pages its meta page claims is truncated;
		// checking it would read past the end of the mapped file.
		if need := tx.Size(); need > info.Size() {
			corrupt.Total = 1
			corrupt.Problems = []error{fmt.Errorf("the file is truncated: its pages need %d bytes, the file has %d", need, info.Size())}
			return nil
		}
		// Drain the channel fully: Check's goroutine blocks until it is read.
		for problem := range tx.Check() {
			corrupt.Total++
			if len(corrupt.Problems) < maxQuotedProblems {
				corrupt.Problems = append(corrupt.Problems, problem)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	if corrupt.Total > 0 {
		return corrupt
	}
	return nil
}

// Compact rewrites the database at path (of a stopped daemon) into a fresh
// file, reclaiming the pages freed by retention, and swaps it in atomically.
// It holds the file lock throughout, so a running daemon makes it fail fast.
// It returns the file sizes before and after.
func Compact(path string) (before, after int64, err error) {
	// Opening through Open takes the lock and checks the schema version.
	st, err := Open(path, Options{})
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = st.Close() }()
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	before = fi.Size()
	tmp := path + ".compact"
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, nil)
	if err != nil {
		return 0, 0, err
	}
	if err := bolt.Compact(dst, st.db, 64<<20); err != nil {
		_ = dst.Close()
		_ = os.Remove(tmp)
		return 0, 0, fmt.Errorf("compact %s: %w", path, err)
	}
	if err := dst.Close(); err != nil {
		_ = os.Remove(tmp)
		return 0, 0, err
	}
	// The rename happens while st still holds the lock on the old inode.
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return 0, 0, err
	}
	if fi, err = os.Stat(path); err != nil {
		return before, 0, err
	}
	return before, fi.Size(), nil
}
