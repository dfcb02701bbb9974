package store

import (
	"bytes"
	"fmt"
	"time"
)

// walk is the one index walk: it iterates the keys of a bucket under a
// prefix in key order, or in reverse, starting just past an exclusive bound
// (relative to the prefix; it need not be a stored key). Keys yielded have
// the prefix stripped. The newest-first listings of deployments and runs walk
// backward from an upper bound; the local session listings walk either way
// from a cursor's pivot.
type walk struct {
	c        kvCursor
	v        []byte
	prefix   []byte
	after    []byte // exclusive start, relative to prefix; nil = from the end
	backward bool
}

func newWalk(b kvBucket, prefix, after []byte, backward bool) *walk {
	return &walk{c: b.Cursor(), prefix: prefix, after: after, backward: backward}
}

// newReverseWalk walks newest first below an exclusive upper bound.
func newReverseWalk(b kvBucket, prefix, upper []byte) *walk {
	return newWalk(b, prefix, upper, true)
}

func (w *walk) first() []byte {
	var k []byte
	var start []byte
	if w.after != nil {
		start = append(append([]byte(nil), w.prefix...), w.after...)
	}
	if !w.backward {
		if start == nil {
			k, w.v = w.c.Seek(w.prefix)
		} else if k, w.v = w.c.Seek(start); bytes.Equal(k, start) {
			k, w.v = w.c.Next()
		}
		return w.strip(k)
	}
	if start == nil && w.prefix != nil {
		// Position after the last key with the prefix: seek to the prefix's
		// successor and step back.
		start = prefixSuccessor(w.prefix)
	}
	switch {
	case start == nil:
		k, w.v = w.c.Last()
	default:
		// Seek lands on the first key >= start; the bound is exclusive.
		if k, _ = w.c.Seek(start); k == nil {
			k, w.v = w.c.Last()
		} else {
			k, w.v = w.c.Prev()
		}
	}
	return w.strip(k)
}

func (w *walk) next() []byte {
	var k []byte
	if w.backward {
		k, w.v = w.c.Prev()
	} else {
		k, w.v = w.c.Next()
	}
	return w.strip(k)
}

// value is the value at the current key.
func (w *walk) value() []byte { return w.v }

func minKey(a, b []byte) []byte {
	if a == nil {
		return b
	}
	if b == nil || bytes.Compare(a, b) < 0 {
		return a
	}
	return b
}

func (w *walk) strip(k []byte) []byte {
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
func collectPage(w *walk, docs kvBucket, kind string, limit int, lower []lowerBound,
	match func(key, entry []byte) bool) ([][]byte, *Position, error) {
	var out [][]byte
	next, err := eachPage(w, docs, kind, limit, lower, match, func(doc []byte) error {
		out = append(out, append([]byte(nil), doc...))
		return nil
	})
	return out, next, err
}

// eachPage is collectPage handing each document to emit instead of copying
// it: doc is only valid during the call (it points into the mapped file), so
// a caller that only reads it (hashes it, looks it up in a cache, appends it
// somewhere) pays no copy per item.
func eachPage(w *walk, docs kvBucket, kind string, limit int, lower []lowerBound,
	match func(key, entry []byte) bool, emit func(doc []byte) error) (*Position, error) {
	var (
		n    int
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
		if n == limit {
			return next, nil
		}
		doc := docs.Get([]byte(id))
		if doc == nil {
			return nil, fmt.Errorf("index points at missing %s %s", kind, id)
		}
		if err := emit(doc); err != nil {
			return nil, err
		}
		n++
		next = &Position{CreatedAt: created, ID: id}
	}
	return nil, nil
}

// indexWalk walks the per-owner index under owner's prefix when a filter
// names one (an agent, a deployment), else the global created index.
func (tx *Tx) indexWalk(owner string, byOwner, byCreated bucket, upper []byte) *walk {
	if owner != "" {
		return newReverseWalk(tx.bucket(byOwner), prefixOf(owner), upper)
	}
	return newReverseWalk(tx.bucket(byCreated), nil, upper)
}
