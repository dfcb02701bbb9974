package harness

import (
	"context"
	"os"
	"sync/atomic"
	"time"
)

// outputPipe is the read end of a process's stdout or stderr, watched so
// that the drain after the process exits can tell a reader still busy with
// output already written (keep waiting: that output is the turn's) from a
// reader blocked on a pipe that something else still holds open (a process
// that left the group; close the pipe under it).
type outputPipe struct {
	f       *os.File
	done    chan struct{} // closed when the reader has returned
	moves   atomic.Uint64 // counts every entry into Read and every return
	waiting atomic.Bool   // the reader is inside Read, waiting for bytes
}

func newOutputPipe(f *os.File) *outputPipe {
	return &outputPipe{f: f, done: make(chan struct{})}
}

func (p *outputPipe) Read(b []byte) (int, error) {
	p.moves.Add(1)
	p.waiting.Store(true)
	n, err := p.f.Read(b)
	p.waiting.Store(false)
	p.moves.Add(1)
	return n, err
}

// minDrainLook is the shortest time between two looks at busy readers.
const minDrainLook = 10 * time.Millisecond

// drainOutput waits, once the process has exited, for the readers of its
// pipes to reach the end of what was written.
//
// A pipe whose reader has sat in Read for a whole grace period with nothing
// arriving is held open by something that outlived the process; it is
// closed under its reader. A reader that read in that period, or is busy
// with what it read (a harness that wrote a burst and exited while the
// events are still being recorded), is waited for: closing then would drop
// output already written. Once ctx is canceled (an interrupt, the turn's
// timeout, the daemon's shutdown) the wait is bounded by one more grace
// period whatever the readers do, so a straggler writing without end can
// hold a turn only until its timeout.
func drainOutput(ctx context.Context, grace func() time.Duration, pipes ...*outputPipe) {
	all := make(chan struct{})
	go func() {
		for _, p := range pipes {
			<-p.done
		}
		close(all)
	}()
	seen := make([]uint64, len(pipes))
	for i, p := range pipes {
		seen[i] = p.moves.Load()
	}
	bounded, canceled := ctx.Err() != nil, ctx.Done()
	if bounded {
		canceled = nil
	}
	// While unbounded the timer is a look at the readers; a floor keeps a
	// grace shortened to nothing from making that a busy loop.
	look := func() time.Duration { return max(grace(), minDrainLook) }
	timer := time.NewTimer(grace())
	defer timer.Stop()
	for {
		select {
		case <-all:
			return
		case <-canceled:
			canceled, bounded = nil, true
			timer.Reset(grace())
			continue
		case <-timer.C:
		}
		if bounded || !progressing(pipes, seen) {
			break
		}
		timer.Reset(look())
	}
	for _, p := range pipes {
		p.f.Close()
	}
	<-all
}

// progressing reports whether a pipe's reader, not yet returned, entered or
// left Read since the last look or is busy outside Read; seen is updated.
// Counting entries too keeps a reader that was busy all period and has just
// entered Read (about to get bytes already in the pipe) from looking idle.
func progressing(pipes []*outputPipe, seen []uint64) bool {
	busy := false
	for i, p := range pipes {
		select {
		case <-p.done:
			continue
		default:
		}
		moves := p.moves.Load()
		if moves != seen[i] || !p.waiting.Load() {
			busy = true
		}
		seen[i] = moves
	}
	return busy
}
