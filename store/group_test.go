package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "t.db"), Options{})
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.Empty(t, s.Check())
		require.NoError(t, s.Close())
	})
	return s
}

func putDoc(tx *Tx, id string, created time.Time) error {
	return tx.PutDeployment(DeploymentIndex{ID: id, CreatedAt: created, AgentID: "a"}, []byte(`{"id":"`+id+`"}`))
}

// queued waits until n writers are queued behind the group in progress;
// the test holds that group open, so this is a condition, not a timing.
func queued(s *Store, n int) func() bool {
	return func() bool {
		s.group.mu.Lock()
		defer s.group.mu.Unlock()
		return len(s.group.queue) >= n
	}
}

// Writers that arrive while a commit is in progress share the next one; a
// failing function fails alone, and the outcome is that of running the
// functions one after another.
func TestWriteGroupsConcurrentWritersAndIsolatesFailures(t *testing.T) {
	s := openTest(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	release := make(chan struct{})
	first := make(chan error)
	go func() {
		first <- s.Write(func(tx *Tx) error {
			<-release // hold the first commit open while the others queue
			return putDoc(tx, "d-first", t0)
		})
	}()
	require.Eventually(t, func() bool {
		s.group.mu.Lock()
		defer s.group.mu.Unlock()
		return s.group.leading && len(s.group.queue) == 0
	}, 10*time.Second, time.Millisecond)

	const writers = 20
	errBad := errors.New("refused")
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			errs[i] = s.Write(func(tx *Tx) error {
				id := fmt.Sprintf("d-%02d", i)
				if err := putDoc(tx, id, t0.Add(time.Duration(i+1)*time.Second)); err != nil {
					return err
				}
				if i == 7 || i == 13 {
					return errBad // after writing: the write must not survive
				}
				return nil
			})
		})
	}
	require.Eventually(t, queued(s, writers), 10*time.Second, time.Millisecond)
	before := s.group.commits.Load()
	close(release)
	require.NoError(t, <-first)
	wg.Wait()

	for i, err := range errs {
		if i == 7 || i == 13 {
			assert.ErrorIs(t, err, errBad, "writer %d", i)
		} else {
			assert.NoError(t, err, "writer %d", i)
		}
	}
	// first, then the 20 queued writers split by their two failures into at
	// most three committed groups: far fewer commits than writers.
	commits := s.group.commits.Load() - before
	assert.LessOrEqual(t, commits, uint64(4), "commits for 21 writers")
	require.NoError(t, s.View(func(tx *Tx) error {
		assert.NotNil(t, tx.GetDeployment("d-first"))
		for i := range writers {
			doc := tx.GetDeployment(fmt.Sprintf("d-%02d", i))
			if i == 7 || i == 13 {
				assert.Nil(t, doc, "a failed function's writes are rolled back")
			} else {
				assert.NotNil(t, doc, "writer %d committed", i)
			}
		}
		return nil
	}))
}

// A lone writer commits at once, in a group of its own.
func TestLoneWriteCommitsAlone(t *testing.T) {
	s := openTest(t)
	before := s.group.commits.Load()
	require.NoError(t, s.Write(func(tx *Tx) error { return putDoc(tx, "d1", time.Unix(1, 0)) }))
	assert.Equal(t, before+1, s.group.commits.Load())
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	assert.False(t, s.group.leading, "no leader is left behind")
}

// A panicking function panics on its own caller's goroutine; the writers
// grouped with it still commit.
func TestWritePanicStaysWithItsCaller(t *testing.T) {
	s := openTest(t)
	release := make(chan struct{})
	done := make(chan error, 3)
	go func() {
		done <- s.Write(func(tx *Tx) error { <-release; return putDoc(tx, "a", time.Unix(1, 0)) })
	}()
	require.Eventually(t, func() bool {
		s.group.mu.Lock()
		defer s.group.mu.Unlock()
		return s.group.leading
	}, 10*time.Second, time.Millisecond)
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		_ = s.Write(func(tx *Tx) error { panic("boom") })
	}()
	require.Eventually(t, queued(s, 1), 10*time.Second, time.Millisecond)
	go func() { done <- s.Write(func(tx *Tx) error { return putDoc(tx, "b", time.Unix(2, 0)) }) }()
	require.Eventually(t, queued(s, 2), 10*time.Second, time.Millisecond)
	close(release)
	assert.Equal(t, "boom", <-panicked)
	require.NoError(t, <-done)
	require.NoError(t, <-done)
	require.NoError(t, s.View(func(tx *Tx) error {
		assert.NotNil(t, tx.GetDeployment("b"))
		return nil
	}))
}
