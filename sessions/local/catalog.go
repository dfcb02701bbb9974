package local

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sandbox0/sandbox0d/internal/listparams"
	"github.com/sandbox0/sandbox0d/internal/wire"
	"github.com/sandbox0/sandbox0d/store"
)

// The agents, environments and vaults of a local backend come from two
// places: the config file (local.agents, local.environments, local.vaults;
// read-only through the API, their metadata says so) and the API (kept in
// bbolt, catalog_store.go). Config ids are names the operator picks; API
// ids are minted in the official alphabet and never equal a config id.
// A config object's created_at is when this daemon first saw it (kept in
// bbolt, so it is stable across restarts).

// List limits of the catalog listings (the official defaults).
const (
	defaultCatalogLimit = 20
	maxCatalogLimit     = 100
)

func (b *Backend) catalogRoutes(mux *http.ServeMux) {
	b.agentRoutes(mux)
	b.environmentRoutes(mux)
	b.vaultRoutes(mux)
}

// listItem is one object of a listing, newest first by created.
type listItem struct {
	id       string
	created  time.Time
	archived bool
	value    any
}

// catalogQuery holds the parameters every catalog listing takes.
type catalogQuery struct {
	limit           int
	page            string
	includeArchived bool
	created         listparams.TimeRange
}

func parseCatalogList(r *http.Request, withCreated bool) (catalogQuery, error) {
	v := r.URL.Query()
	q := catalogQuery{page: v.Get("page")}
	allowed := []string{"limit", "page", "include_archived"}
	if withCreated {
		allowed = append(allowed, "created_at[gte]", "created_at[lte]")
	}
	if err := listparams.Known(v, allowed...); err != nil {
		return q, err
	}
	var err error
	if q.limit, err = listparams.Limit(v, defaultCatalogLimit, maxCatalogLimit); err != nil {
		return q, err
	}
	inc, err := listparams.Bool(v, "include_archived")
	if err != nil {
		return q, err
	}
	q.includeArchived = inc != nil && *inc
	if withCreated {
		if q.created, err = listparams.CreatedAt(v); err != nil {
			return q, err
		}
	}
	return q, nil
}

// scope binds a cursor to the listing and its filters.
func (q catalogQuery) scope(list string) string {
	return listparams.Scope("local/"+list, map[string]string{
		"include_archived": strconv.FormatBool(q.includeArchived),
		"created_at[gte]":  listparams.FormatTime(q.created.GTE),
		"created_at[lte]":  listparams.FormatTime(q.created.LTE),
	})
}

// writePage answers one page of items: filtered, newest first, after the
// cursor's position.
func (b *Backend) writePage(w http.ResponseWriter, list string, q catalogQuery, items []listItem) {
	scope := q.scope(list)
	// The catalog store's codec: in a cluster a page token from one node
	// pages on another, as the catalog itself is shared.
	cursors := b.catalog.ns.Cursors()
	var after *store.Position
	if q.page != "" {
		pos, err := cursors.DecodePosition(scope, q.page)
		if err != nil {
			wire.WriteError(w, http.StatusBadRequest, errBadCursor.Error())
			return
		}
		after = &pos
	}
	items = slices.DeleteFunc(items, func(it listItem) bool {
		return (it.archived && !q.includeArchived) || !q.created.Contains(it.created)
	})
	slices.SortFunc(items, func(x, y listItem) int {
		if c := y.created.Compare(x.created); c != 0 {
			return c
		}
		return cmp.Compare(y.id, x.id)
	})
	start := 0
	if after != nil {
		start = len(items)
		for i, it := range items {
			c := after.CreatedAt.Compare(it.created)
			if c > 0 || (c == 0 && strings.Compare(it.id, after.ID) < 0) {
				start = i
				break
			}
		}
	}
	end := min(start+q.limit, len(items))
	out := listView[any]{Data: []any{}}
	for _, it := range items[start:end] {
		out.Data = append(out.Data, it.value)
	}
	if end < len(items) {
		last := items[end-1]
		next := cursors.EncodePosition(scope, store.Position{CreatedAt: last.created, ID: last.id})
		out.NextPage = &next
	}
	writeJSON(w, http.StatusOK, out)
}

// listView is one page of a listing.
type listView[T any] struct {
	Data     []T     `json:"data"`
	NextPage *string `json:"next_page"`
}

// mintID returns a new id in the official alphabet that is neither a
// config id nor an id already stored (a clash is 1 in 62^24, checked
// anyway: config ids are free-form).
func (b *Backend) mintID(prefix, bucket string) string {
	for {
		id := newID(prefix)
		_, agent := b.agents[id]
		_, env := b.envs[id]
		_, vault := b.vaults[id]
		if !agent && !env && !vault && !b.catalog.exists(bucket, id) {
			return id
		}
	}
}

// configAgent finds a config-declared agent; version 0 means the latest.
func (b *Backend) configAgent(id string, version int64) (Agent, bool) {
	versions := b.agents[id]
	if len(versions) == 0 {
		return Agent{}, false
	}
	if version == 0 {
		return versions[len(versions)-1], true
	}
	for _, a := range versions {
		if a.Version == version {
			return a, true
		}
	}
	return Agent{}, false
}

// agent finds an agent version, config-declared or created through the
// API; version 0 means the latest. An archived API agent is still found:
// sessions and deployments that pinned it keep running it.
func (b *Backend) agent(id string, version int64) (Agent, bool) {
	if a, ok := b.configAgent(id, version); ok || len(b.agents[id]) > 0 {
		return a, ok
	}
	a, ok := b.apiAgentVersion(id, version)
	if !ok {
		return Agent{}, false
	}
	run, err := b.runnableAgent(a)
	if err != nil {
		// Validated when stored; a failure here is a harness change.
		b.log.Warn("an API agent no longer maps onto claude-code", "agent_id", id, "version", a.Version, "error", err)
		return Agent{}, false
	}
	return run, true
}

// apiAgentVersion reads one version of an API agent (0: the latest).
func (b *Backend) apiAgentVersion(id string, version int64) (apiAgent, bool) {
	if !strings.HasPrefix(id, agentIDPrefix) {
		return apiAgent{}, false
	}
	versions, err := b.catalog.agentVersions(id)
	if err != nil {
		b.log.Error("reading an agent", "agent_id", id, "error", err)
		return apiAgent{}, false
	}
	for i, a := range versions {
		if a.Version == version || (version == 0 && i == len(versions)-1) {
			return a, true
		}
	}
	return apiAgent{}, false
}

// environment finds an environment, config-declared or created through the
// API (archived ones included: existing sessions keep it).
func (b *Backend) environment(id string) (Environment, bool) {
	e, _, ok := b.environmentState(id)
	return e, ok
}

// environmentState is environment with whether it is archived.
func (b *Backend) environmentState(id string) (Environment, bool, bool) {
	if e, ok := b.envs[id]; ok {
		return e, false, true
	}
	e, err := getOne[apiEnvironment](b.catalog, bucketAPIEnvironments, []byte(id))
	if err != nil {
		return Environment{}, false, false
	}
	return b.runnableEnvironment(e), e.ArchivedAt != nil, true
}

// catalogKeys names every configured object for firstSeen.
func (b *Backend) catalogKeys() []string {
	var keys []string
	for _, versions := range b.agents {
		for _, a := range versions {
			keys = append(keys, "agent/"+a.ID+"/"+strconv.FormatInt(a.Version, 10))
		}
	}
	for id := range b.envs {
		keys = append(keys, "environment/"+id)
	}
	for id := range b.vaults {
		keys = append(keys, "vault/"+id)
	}
	slices.SortFunc(keys, cmp.Compare)
	return keys
}

// checkConfigIDs refuses a config id that an object created through the
// API already has (a config written after the fact to shadow it).
func (b *Backend) checkConfigIDs() error {
	for i, a := range b.cfg.Agents {
		if b.catalog.exists(bucketAPIAgents, a.ID) {
			return &ConfigError{Key: fmt.Sprintf("local.agents[%d].id", i), Problem: fmt.Sprintf("%q is the id of an agent created through the API; pick another name", a.ID)}
		}
	}
	for i, e := range b.cfg.Environments {
		if b.catalog.exists(bucketAPIEnvironments, e.ID) {
			return &ConfigError{Key: fmt.Sprintf("local.environments[%d].id", i), Problem: fmt.Sprintf("%q is the id of an environment created through the API; pick another name", e.ID)}
		}
	}
	for i, v := range b.cfg.Vaults {
		if b.catalog.exists(bucketAPIVaults, v.ID) {
			return &ConfigError{Key: fmt.Sprintf("local.vaults[%d].id", i), Problem: fmt.Sprintf("%q is the id of a vault created through the API; pick another name", v.ID)}
		}
	}
	return nil
}
