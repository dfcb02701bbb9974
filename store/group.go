package store

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// Group commit. Every API write used to pay for a bbolt commit (and its
// fsync) of its own, one after another behind bbolt's single writer; the
// CPU was idle while each waited for the disk. Write lets concurrent writers
// share one transaction instead:
//
//   - a writer that finds no commit in progress commits at once, alone: a
//     lone request never waits for company (unlike db.Batch, which waits up
//     to MaxBatchDelay);
//   - writers that arrive while a commit is in progress queue up, and the
//     whole queue becomes the next transaction, led by the first of them.
//
// A group is one transaction, so a 200 still means fsynced. As with
// db.Batch, a function may run more than once (when a later function of its
// group fails, the transaction is rolled back and the others run again), so
// it must derive everything it writes from the transaction and do its side
// effects after Write returns; values it assigns to its caller's variables
// are simply assigned again.

// maxGroup bounds one transaction, so a flood of writers cannot build an
// arbitrarily large commit while they wait.
const maxGroup = 256

type groupCall struct {
	fn    func(*Tx) error
	err   error
	panic any           // a panic of fn, re-raised on its caller's goroutine
	done  chan struct{} // closed when err is final
	lead  chan struct{} // closed when this call must lead the next group
}

type groupCommitter struct {
	mu      sync.Mutex
	queue   []*groupCall
	leading bool          // some goroutine is committing groups
	commits atomic.Uint64 // transactions committed by Write (tests, benchmarks)
}

// Write runs fn in a read-write transaction that it may share with
// concurrent Write calls, and returns once that transaction is committed
// (or fn failed). fn must be idempotent and free of side effects: see the
// comment above.
func (s *Store) Write(fn func(tx *Tx) error) error {
	c := &groupCall{fn: fn, done: make(chan struct{}), lead: make(chan struct{})}
	g := &s.group
	g.mu.Lock()
	g.queue = append(g.queue, c)
	lead := !g.leading
	if lead {
		g.leading = true
	}
	g.mu.Unlock()
	if !lead {
		select {
		case <-c.done:
		case <-c.lead:
			s.leadGroups()
			<-c.done
		}
	} else {
		s.leadGroups()
		<-c.done
	}
	if c.panic != nil {
		panic(c.panic)
	}
	return c.err
}

// leadGroups commits the queue as one group, then hands leadership to the
// first writer that queued meanwhile (so no goroutine commits on behalf of
// others for long while its own caller waits), or ends it.
func (s *Store) leadGroups() {
	g := &s.group
	g.mu.Lock()
	n := min(len(g.queue), maxGroup)
	batch := g.queue[:n:n]
	g.queue = g.queue[n:]
	g.mu.Unlock()

	s.commitGroup(batch)

	g.mu.Lock()
	if len(g.queue) == 0 {
		g.leading = false
		g.queue = nil
		g.mu.Unlock()
	} else {
		next := g.queue[0]
		g.mu.Unlock()
		close(next.lead)
	}
	for _, c := range batch {
		close(c.done)
	}
}

// commitGroup runs batch in one transaction. When a function fails, its
// error (or panic) is its own; the functions before it are committed as a
// group of their own (their writes were rolled back with the failure) and
// the ones after it form the next group, which keeps the outcome that of
// running them one after another.
func (s *Store) commitGroup(batch []*groupCall) {
	if s.db == nil {
		s.commitGroupEtcd(batch)
		return
	}
	for len(batch) > 0 {
		failed := -1
		var ferr error
		// A closure given to bbolt directly stays on the stack; one given
		// to the engine interface would escape (allocations per commit),
		// so the etcd path has a function of its own.
		err := s.db.Update(func(btx *bolt.Tx) error {
			failed, ferr = runGroup(batch, &Tx{tx: kvTx{b: btx}})
			return ferr
		})
		if failed < 0 {
			if err == nil {
				s.group.commits.Add(1)
			}
			for _, c := range batch {
				c.err = err // nil, or the commit's own failure (disk full …)
			}
			return
		}
		if failed > 0 {
			s.commitGroup(batch[:failed])
		}
		batch[failed].err = ferr
		batch = batch[failed+1:]
	}
}

// runGroup runs batch's functions in tx until one fails: its index and
// error, or -1.
func runGroup(batch []*groupCall, tx *Tx) (int, error) {
	for i, c := range batch {
		if err := runGroupFn(c, tx); err != nil {
			return i, err
		}
	}
	return -1, nil
}

// commitGroupEtcd packs a group into Txns without running a function more
// often than a conflict demands. The functions run in order in one
// transaction; etcd's journal (mark, rollback) lets the transaction take
// back one function's changes, which bbolt cannot, so:
//
//   - a function that would make the Txn carry more than etcd's
//     --max-txn-ops compares or writes is rolled back and leads the next
//     Txn (running a whole group, failing on size and halving it cost every
//     function twice, and on etcd every read twice);
//   - a function that fails has its writes rolled back and the others go
//     on, as if it had run alone before them (a failed function changes
//     nothing); its reads stay, so the commit also proves its error, which
//     may rest on something taken without a read (a fence taken as held).
//
// A refused commit reruns the functions from the refusal's seed: only keys
// that changed are new to them, nothing is read again, and a fire whose
// claim another writer took fails alone (ErrDuplicateFire) while the rest
// commit.
func (s *Store) commitGroupEtcd(batch []*groupCall) {
	type failure struct {
		i   int
		err error
	}
	for len(batch) > 0 {
		var n int
		var failed []failure
		err := s.eng.update(func(t kvTx) error {
			n, failed = len(batch), failed[:0]
			tx := &Tx{tx: t}
			for i, c := range batch {
				m := t.e.mark()
				err := runGroupFn(c, tx)
				if err != nil {
					t.e.rollback(m, false)
				}
				if i > 0 && t.e.overLimit() {
					t.e.rollback(m, true)
					n = i
					return nil
				}
				if err != nil {
					failed = append(failed, failure{i, err})
				}
			}
			return nil
		})
		if errors.Is(err, errTxnTooLarge) && n > 1 {
			// A prefix delete that became point deletes outgrew the
			// estimate: commit the members in two halves.
			s.commitGroupEtcd(batch[:n/2])
			batch = batch[n/2:]
			continue
		}
		if err == nil {
			s.group.commits.Add(1)
		}
		for _, c := range batch[:n] {
			c.err = err
		}
		if err == nil || errors.Is(err, errTxnTooLarge) && n == 1 {
			for _, f := range failed {
				batch[f.i].err = f.err
			}
		}
		batch = batch[n:]
	}
}

func runGroupFn(c *groupCall, tx *Tx) (err error) {
	c.panic = nil
	defer func() {
		if r := recover(); r != nil {
			c.panic = r
			err = fmt.Errorf("write function panicked: %v", r)
		}
	}()
	return c.fn(tx)
}
