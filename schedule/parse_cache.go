package schedule

import (
	"sync"
	"time"
)

// Parse is on every create and update request, and a deployment fleet uses
// few distinct schedules: compiling one, checking it against gronx and
// proving it fires in its zone cost as much as the rest of a create's request
// decoding. Accepted schedules are kept here and handed out again (a *Cron
// is immutable once compiled). Rejections are not kept: their errors are
// built fresh for each request.
const (
	parseCacheSize = 1024
	// parseCacheTTL bounds how long an acceptance is reused: the "fires in
	// its zone" check is made from the current time, so a schedule whose
	// last fire time passes is refused again within the hour.
	parseCacheTTL = time.Hour
)

type parsed struct {
	cron *Cron
	at   time.Time
}

// parseKey: the policy is part of the key, since it decides both the fire
// times and whether the never-fires check passes.
type parseKey struct {
	expression, timezone string
	policy               DSTPolicy
}

var parseCache struct {
	mu      sync.Mutex
	entries map[parseKey]parsed
}

func cachedParse(expression, timezone string, policy DSTPolicy, now time.Time) *Cron {
	parseCache.mu.Lock()
	defer parseCache.mu.Unlock()
	p, ok := parseCache.entries[parseKey{expression, timezone, policy}]
	if !ok || now.Sub(p.at) >= parseCacheTTL || now.Before(p.at) {
		return nil
	}
	return p.cron
}

func rememberParse(expression, timezone string, policy DSTPolicy, c *Cron, now time.Time) {
	parseCache.mu.Lock()
	defer parseCache.mu.Unlock()
	if parseCache.entries == nil {
		parseCache.entries = make(map[parseKey]parsed)
	}
	key := parseKey{expression, timezone, policy}
	if _, ok := parseCache.entries[key]; !ok && len(parseCache.entries) >= parseCacheSize {
		for k := range parseCache.entries { // any one: map order is random
			delete(parseCache.entries, k)
			break
		}
	}
	parseCache.entries[key] = parsed{cron: c, at: now}
}
