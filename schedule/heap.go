package schedule

import (
	"container/heap"
	"time"
)

// loopEntry is the one planned fire the loop holds for a deployment. It is
// deliberately small (about 80 bytes) because a node may hold many thousands.
type loopEntry struct {
	id          string
	scheduledAt time.Time
	fireAt      time.Time
	generation  uint64
	index       int // position in loopHeap, kept current by Swap/Push/Pop
}

func (e *loopEntry) due() Due {
	return Due{ID: e.id, ScheduledAt: e.scheduledAt, FireAt: e.fireAt, Generation: e.generation}
}

// fireBefore orders entries by fire instant, then by id, so two entries due
// at the same instant are always handed out in the same order.
func (e *loopEntry) fireBefore(other *loopEntry) bool {
	if c := e.fireAt.Compare(other.fireAt); c != 0 {
		return c < 0
	}
	return e.id < other.id
}

// loopHeap implements container/heap.Interface; use it only through
// pendingFires, which keeps the id index in step.
type loopHeap []*loopEntry

func (h loopHeap) Len() int           { return len(h) }
func (h loopHeap) Less(i, j int) bool { return h[i].fireBefore(h[j]) }

func (h loopHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *loopHeap) Push(x any) {
	e := x.(*loopEntry) // only pendingFires pushes, always a *loopEntry
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *loopHeap) Pop() any {
	old := *h
	last := len(old) - 1
	e := old[last]
	old[last] = nil // let the entry be collected once the caller drops it
	e.index = -1
	*h = old[:last]
	return e
}

// pendingFires is a min-heap of planned fires plus an id index, so adding,
// moving and removing one deployment's fire is O(log n). It is not safe for
// concurrent use; Loop guards it with its mutex.
type pendingFires struct {
	heap loopHeap
	byID map[string]*loopEntry
}

func newPendingFires() *pendingFires {
	return &pendingFires{byID: make(map[string]*loopEntry)}
}

func (p *pendingFires) len() int { return len(p.heap) }

// earliest returns the entry that fires first, or nil when empty.
func (p *pendingFires) earliest() *loopEntry {
	if len(p.heap) == 0 {
		return nil
	}
	return p.heap[0]
}

// set adds or replaces the planned fire for id and reports whether the
// earliest fire instant changed, which is when a sleeping loop must re-arm.
func (p *pendingFires) set(id string, scheduledAt, fireAt time.Time, generation uint64) (earliestChanged bool) {
	before, beforeAt := p.earliestAndInstant()
	if e, ok := p.byID[id]; ok {
		e.scheduledAt, e.fireAt, e.generation = scheduledAt, fireAt, generation
		heap.Fix(&p.heap, e.index)
	} else {
		e := &loopEntry{id: id, scheduledAt: scheduledAt, fireAt: fireAt, generation: generation}
		heap.Push(&p.heap, e)
		p.byID[id] = e
	}
	after, afterAt := p.earliestAndInstant()
	return before != after || !beforeAt.Equal(afterAt)
}

// remove drops the planned fire for id, if any, and reports whether the
// earliest fire instant changed.
func (p *pendingFires) remove(id string) (earliestChanged bool) {
	e, ok := p.byID[id]
	if !ok {
		return false
	}
	wasEarliest := e.index == 0
	heap.Remove(&p.heap, e.index)
	delete(p.byID, id)
	return wasEarliest
}

// popDue removes and returns the earliest entry if it is due at now.
// Otherwise it returns how long until the earliest entry is due (ok=false);
// wait is zero when nothing is planned.
func (p *pendingFires) popDue(now time.Time) (d Due, wait time.Duration, ok bool) {
	e := p.earliest()
	if e == nil {
		return Due{}, 0, false
	}
	if e.fireAt.After(now) {
		return Due{}, e.fireAt.Sub(now), false
	}
	heap.Pop(&p.heap)
	delete(p.byID, e.id)
	return e.due(), 0, true
}

func (p *pendingFires) earliestAndInstant() (*loopEntry, time.Time) {
	e := p.earliest()
	if e == nil {
		return nil, time.Time{}
	}
	return e, e.fireAt
}
