package httpapi

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/sandbox0/sandbox0d/deployments"
)

// renderCacheSize bounds the rendered deployments kept in memory (each is
// its wire JSON, about a kilobyte): enough for every deployment of a typical
// install, while a million deployments cost at most this many entries.
const renderCacheSize = 50000

// renderCache keeps each deployment's wire JSON per stored revision, so a
// retrieve or a list page of unchanged deployments neither decodes the
// stored document nor renders and encodes it again. An entry is valid while
// the document's revision is unchanged and, for scheduled deployments,
// until the first of its upcoming_runs_at passes (the only part of the
// rendering that depends on the clock rather than on the document).
type renderCache struct {
	mu sync.RWMutex
	// entries are keyed by a hash of the deployment id (Stored.IDHash): a
	// list page looks up a hundred entries, and hashing a uint64 key beats
	// hashing and comparing id strings; the entry's id settles a collision.
	entries map[uint64]renderEntry
}

type renderEntry struct {
	id    string
	rev   uint64
	body  []byte    // immutable once stored
	until time.Time // zero: no expiry
}

func newRenderCache() *renderCache {
	return &renderCache{entries: make(map[uint64]renderEntry)}
}

func (c *renderCache) get(st deployments.Stored, now time.Time) ([]byte, bool) {
	c.mu.RLock()
	e, ok := c.entries[st.IDHash()]
	c.mu.RUnlock()
	if !ok || e.rev != st.Rev || !st.IsID(e.id) || (!e.until.IsZero() && !now.Before(e.until)) {
		return nil, false
	}
	return e.body, true
}

func (c *renderCache) put(key uint64, e renderEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= renderCacheSize {
		// Evict an arbitrary entry (map order is randomised): no bookkeeping
		// on the read path, and a working set larger than the cache still
		// hits in proportion to its size.
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = e
}

// renderStored returns the wire JSON of a stored deployment, from the cache
// when its revision is unchanged.
func (a *API) renderStored(st deployments.Stored, now time.Time) ([]byte, error) {
	if body, ok := a.rendered.get(st, now); ok {
		return body, nil
	}
	d, err := st.Decode()
	if err != nil {
		return nil, err
	}
	upcoming := a.svc.Upcoming(d)
	body, err := json.Marshal(renderDeployment(d, upcoming))
	if err != nil {
		return nil, err
	}
	e := renderEntry{id: d.ID, rev: st.Rev, body: body}
	if len(upcoming) > 0 {
		// upcoming_runs_at is the next times after max(plan_from, now): the
		// same list for every now before its first element.
		e.until = upcoming[0]
	}
	if d.ID != "" && st.IsID(d.ID) {
		a.rendered.put(st.IDHash(), e)
	}
	return body, nil
}
