package store

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// reverseWalk iterates the keys of a bucket (optionally under a prefix) from
// just below an exclusive upper bound down to the lowest key. Keys yielded
// have the prefix stripped, leaving the created|id part.
type reverseWalk struct {
	c      *bolt.Cursor
	v      []byte
	prefix []byte
	upper  []byte // created|id part, exclusive; nil = no bound
}

func newReverseWalk(b *bolt.Bucket, prefix, upper []byte) *reverseWalk {
	return &reverseWalk{c: b.Cursor(), prefix: prefix, upper: upper}
}

func (w *reverseWalk) first() []byte {
	var k []byte
	if w.upper != nil {
		seek := append(append([]byte(nil), w.prefix...), w.upper...)
		k, _ = w.c.Seek(seek)
		if k == nil {
			k, w.v = w.c.Last()
		} else {
			// Seek lands on the first key >= bound; the bound is exclusive.
			k, w.v = w.c.Prev()
		}
	} else if w.prefix != nil {
		// Position after the last key with the prefix: seek to the prefix's
		// successor and step back.
		k, _ = w.c.Seek(prefixSuccessor(w.prefix))
		if k == nil {
			k, w.v = w.c.Last()
		} else {
			k, w.v = w.c.Prev()
		}
	} else {
		k, w.v = w.c.Last()
	}
	return w.strip(k)
}

func (w *reverseWalk) next() []byte {
	var k []byte
	k, w.v = w.c.Prev()
	return w.strip(k)
}

// value is the value at the current key.
func (w *reverseWalk) value() []byte { return w.v }

func minKey(a, b []byte) []byte {
	if a == nil {
		return b
	}
	if b == nil || bytes.Compare(a, b) < 0 {
		return a
	}
	return b
}

func (w *reverseWalk) strip(k []byte) []byte {
	if k == nil {
		return nil
	}
	if w.prefix != nil {
		if !bytes.HasPrefix(k, w.prefix) {
			return nil
		}
		return k[len(w.prefix):]
	}
	return k
}

func prefixSuccessor(p []byte) []byte {
	s := append([]byte(nil), p...)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] < 0xff {
			s[i]++
			return s[:i+1]
		}
	}
	return nil
}

// upperBound turns a cursor position and an inclusive/exclusive time bound
// into the exclusive created|id key the walk starts below. strict makes the
// time bound exclusive (created_at[lt]) instead of inclusive ([lte]).
func upperBound(after *Position, lte time.Time, strict bool) []byte {
	var bound []byte
	if !lte.IsZero() {
		t := lte
		if !strict {
			t = t.Add(time.Nanosecond)
		}
		bound = timeKey(t) // with an empty id, every key at t sorts at or above it
	}
	if after != nil {
		ak := createdKey(after.CreatedAt, after.ID)
		if bound == nil || bytes.Compare(ak, bound) < 0 {
			bound = ak
		}
	}
	return bound
}

// lowerBound is where a newest-first walk stops: before At (inclusive
// bound, created_at[gte]) or at At (strict, created_at[gt]).
type lowerBound struct {
	At     time.Time
	Strict bool
}

func (lb lowerBound) excludes(created time.Time) bool {
	if lb.At.IsZero() {
		return false
	}
	if lb.Strict {
		return !created.After(lb.At)
	}
	return created.Before(lb.At)
}

// collectPage walks w newest first, keeps the documents whose index entry
// matches, and stops at limit. It returns a continuation position only when
// another match exists past a full page, so the last page has none.
func collectPage(w *reverseWalk, docs *bolt.Bucket, kind string, limit int, lower []lowerBound,
	match func(key, entry []byte) bool) ([][]byte, *Position, error) {
	var (
		out  [][]byte
		next *Position
	)
walk:
	for k := w.first(); k != nil; k = w.next() {
		created, id := splitCreatedKey(k)
		for _, lb := range lower {
			if lb.excludes(created) {
				break walk
			}
		}
		if !match(k, w.value()) {
			continue
		}
		if len(out) == limit {
			return out, next, nil
		}
		doc := docs.Get([]byte(id))
		if doc == nil {
			return nil, nil, fmt.Errorf("index points at missing %s %s", kind, id)
		}
		out = append(out, append([]byte(nil), doc...))
		next = &Position{CreatedAt: created, ID: id}
	}
	return out, nil, nil
}

// indexWalk walks the per-owner index under owner's prefix when a filter
// names one (an agent, a deployment), else the global created index.
func (tx *Tx) indexWalk(owner string, byOwner, byCreated []byte, upper []byte) *reverseWalk {
	if owner != "" {
		return newReverseWalk(tx.tx.Bucket(byOwner), prefixOf(owner), upper)
	}
	return newReverseWalk(tx.tx.Bucket(byCreated), nil, upper)
}
