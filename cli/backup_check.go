package cli

import (
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// boltOpenTimeout bounds the wait for bbolt's file lock: nothing else should
// hold a fresh backup file, so a long wait means something is wrong.
const boltOpenTimeout = 5 * time.Second

// maxReportedProblems is how many consistency problems are quoted.
const maxReportedProblems = 5

// checkBoltFile opens a bbolt file read-only and runs its consistency check.
func checkBoltFile(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: boltOpenTimeout})
	if err != nil {
		return fmt.Errorf("open %s as a bbolt database: %w", path, err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		// A file shorter than the pages its meta page claims is truncated;
		// checking it would read past the end of the mapped file.
		if need := tx.Size(); need > info.Size() {
			return fmt.Errorf("%s is truncated: its pages need %d bytes, the file has %d", path, need, info.Size())
		}
		var problems []error
		total := 0
		// Drain the channel fully: Check's goroutine blocks until it is read.
		for problem := range tx.Check() {
			total++
			if len(problems) < maxReportedProblems {
				problems = append(problems, problem)
			}
		}
		if total == 0 {
			return nil
		}
		if total > len(problems) {
			problems = append(problems, fmt.Errorf("and %d more problems", total-len(problems)))
		}
		return fmt.Errorf("%d problems in %s: %w", total, path, errors.Join(problems...))
	})
}
