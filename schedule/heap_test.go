package schedule

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sortedFiresModel is the obviously-correct reference for pendingFires: a
// slice kept sorted by (fireAt, id) with linear-time updates.
type sortedFiresModel struct{ fires []Due }

func compareDues(a, b Due) int {
	return cmp.Or(a.FireAt.Compare(b.FireAt), cmp.Compare(a.ID, b.ID))
}

func (m *sortedFiresModel) earliest() (Due, bool) {
	if len(m.fires) == 0 {
		return Due{}, false
	}
	return m.fires[0], true
}

func (m *sortedFiresModel) set(d Due) {
	m.remove(d.ID)
	i, _ := slices.BinarySearchFunc(m.fires, d, compareDues)
	m.fires = slices.Insert(m.fires, i, d)
}

func (m *sortedFiresModel) remove(id string) {
	m.fires = slices.DeleteFunc(m.fires, func(d Due) bool { return d.ID == id })
}

// requireHeapMatchesModel checks the heap property, the id index and the
// earliest entry against the model. It runs after every step on every entry,
// so it compares with plain Go and only calls into testify to report a
// failure: testify's reflection on ~10^6 passing checks was nearly all of
// the test's time.
func requireHeapMatchesModel(t *testing.T, p *pendingFires, m *sortedFiresModel, step int) {
	t.Helper()
	require.Equal(t, len(m.fires), p.len(), "step %d: length", step)
	require.Len(t, p.byID, p.len(), "step %d: index size", step)
	for i, e := range p.heap {
		if e.index != i {
			t.Fatalf("step %d: entry %s records its position as %d, is at %d", step, e.id, e.index, i)
		}
		if p.byID[e.id] != e {
			t.Fatalf("step %d: index does not point at the heap entry of %s", step, e.id)
		}
		if i > 0 {
			if parent := p.heap[(i-1)/2]; e.fireBefore(parent) {
				t.Fatalf("step %d: %s sorts before its parent %s", step, e.id, parent.id)
			}
		}
	}
	want, ok := m.earliest()
	got := p.earliest()
	require.Equal(t, ok, got != nil, "step %d: emptiness", step)
	if ok && want != got.due() {
		require.Equal(t, want, got.due(), "step %d: earliest", step)
	}
}

func TestPendingFiresMatchesSortedModelUnderRandomOperations(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4} {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			base := time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)
			// Few ids and few distinct instants: replacements and ties are common.
			instant := func() time.Time { return base.Add(time.Duration(rng.IntN(40)) * time.Second) }
			p := newPendingFires()
			m := &sortedFiresModel{}

			for step := range 3000 {
				id := fmt.Sprintf("dep-%02d", rng.IntN(60))
				before, hadBefore := m.earliest()
				switch op := rng.IntN(10); {
				case op < 6:
					d := Due{ID: id, ScheduledAt: instant(), Generation: uint64(step)}
					d.FireAt = d.ScheduledAt.Add(time.Duration(rng.IntN(3)) * time.Second)
					changed := p.set(d.ID, d.ScheduledAt, d.FireAt, d.Generation)
					m.set(d)
					after, _ := m.earliest()
					wantChanged := !hadBefore || before.ID != after.ID || !before.FireAt.Equal(after.FireAt)
					require.Equal(t, wantChanged, changed, "step %d: set %s reports earliest change", step, id)
				case op < 8:
					changed := p.remove(id)
					m.remove(id)
					after, hasAfter := m.earliest()
					wantChanged := hadBefore && (!hasAfter || before.ID != after.ID)
					require.Equal(t, wantChanged, changed, "step %d: remove %s reports earliest change", step, id)
				default:
					now := instant()
					got, wait, ok := p.popDue(now)
					switch {
					case !hadBefore:
						require.False(t, ok, "step %d: pop from empty", step)
						require.Zero(t, wait)
					case before.FireAt.After(now):
						require.False(t, ok, "step %d: nothing due at %v", step, now)
						require.Equal(t, before.FireAt.Sub(now), wait, "step %d: wait", step)
					default:
						require.True(t, ok, "step %d: %s due at %v", step, before.ID, now)
						require.Equal(t, before, got, "step %d: popped the earliest", step)
						m.remove(before.ID)
					}
				}
				requireHeapMatchesModel(t, p, m, step)
			}

			// Draining yields exactly the model's order.
			far := base.Add(24 * time.Hour)
			for _, want := range slices.Clone(m.fires) {
				got, _, ok := p.popDue(far)
				require.True(t, ok)
				assert.Equal(t, want, got)
			}
			_, _, ok := p.popDue(far)
			assert.False(t, ok)
		})
	}
}

func TestLoopSetAndRemoveKeepNextFireAtCurrent(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	base := time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC)
	l := NewLoop(LoopConfig{Logger: discardLoopLogger()})
	m := &sortedFiresModel{}
	for step := range 2000 {
		id := fmt.Sprintf("dep-%d", rng.IntN(100))
		if rng.IntN(3) == 0 {
			l.Remove(id)
			m.remove(id)
		} else {
			at := base.Add(time.Duration(rng.IntN(600)) * time.Second)
			l.Set(id, at, at, uint64(step))
			m.set(Due{ID: id, ScheduledAt: at, FireAt: at, Generation: uint64(step)})
		}
		require.Equal(t, len(m.fires), l.Len(), "step %d", step)
		want, wantOK := m.earliest()
		got, ok := l.NextFireAt()
		require.Equal(t, wantOK, ok, "step %d", step)
		require.True(t, want.FireAt.Equal(got), "step %d: NextFireAt %v, want %v", step, got, want.FireAt)
	}
}
