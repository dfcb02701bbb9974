package local

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/sandbox0/sandbox0d/internal/wire"
)

// The agents, environments and vaults of a local backend are declared in the
// config file; the API serves them read-only in the official shapes. Their
// created_at is when this daemon first saw each one (kept in bbolt, so it is
// stable across restarts).

type catalogAgentView struct {
	agentView
	ArchivedAt *time.Time        `json:"archived_at"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
	Metadata   map[string]string `json:"metadata"`
}

type environmentView struct {
	Type        string            `json:"type"`
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Description *string           `json:"description"`
	Config      map[string]string `json:"config"`
	Metadata    map[string]string `json:"metadata"`
	ArchivedAt  *string           `json:"archived_at"`
	CreatedAt   string            `json:"created_at"`
	UpdatedAt   string            `json:"updated_at"`
	Scope       string            `json:"scope"` // the whole machine: "organization"
}

type vaultView struct {
	Type        string            `json:"type"`
	ID          string            `json:"id"`
	DisplayName string            `json:"display_name"`
	Metadata    map[string]string `json:"metadata"`
	ArchivedAt  *time.Time        `json:"archived_at"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
}

// listView is one page holding every item: a config declares few.
type listView[T any] struct {
	Data     []T     `json:"data"`
	NextPage *string `json:"next_page"`
}

func newList[T any](items []T, _ func(T) string) listView[T] {
	l := listView[T]{Data: items}
	if l.Data == nil {
		l.Data = []T{}
	}
	return l
}

func (b *Backend) catalogRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/agents", func(w http.ResponseWriter, r *http.Request) {
		var out []catalogAgentView
		for _, id := range slices.Sorted(mapKeys(b.agents)) {
			versions := b.agents[id]
			out = append(out, b.catalogAgent(versions[len(versions)-1]))
		}
		writeJSON(w, http.StatusOK, newList(out, func(a catalogAgentView) string { return a.ID }))
	})
	mux.HandleFunc("GET /v1/agents/{id}", func(w http.ResponseWriter, r *http.Request) {
		var version int64
		if v := r.URL.Query().Get("version"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				wire.WriteError(w, http.StatusBadRequest, fmt.Sprintf("version: %q is not a positive integer", v))
				return
			}
			version = n
		}
		a, ok := b.agent(r.PathValue("id"), version)
		if !ok {
			wire.WriteError(w, http.StatusNotFound, b.agentNotFound(r.PathValue("id"), version).Error())
			return
		}
		writeJSON(w, http.StatusOK, b.catalogAgent(a))
	})
	mux.HandleFunc("GET /v1/agents/{id}/versions", func(w http.ResponseWriter, r *http.Request) {
		versions, ok := b.agents[r.PathValue("id")]
		if !ok {
			wire.WriteError(w, http.StatusNotFound, b.agentNotFound(r.PathValue("id"), 0).Error())
			return
		}
		var out []catalogAgentView
		for _, a := range slices.Backward(versions) {
			out = append(out, b.catalogAgent(a))
		}
		writeJSON(w, http.StatusOK, newList(out, func(a catalogAgentView) string { return a.ID }))
	})
	mux.HandleFunc("GET /v1/environments", func(w http.ResponseWriter, r *http.Request) {
		var out []environmentView
		for _, id := range slices.Sorted(mapKeys(b.envs)) {
			out = append(out, b.environmentView(b.envs[id]))
		}
		writeJSON(w, http.StatusOK, newList(out, func(e environmentView) string { return e.ID }))
	})
	mux.HandleFunc("GET /v1/environments/{id}", func(w http.ResponseWriter, r *http.Request) {
		e, ok := b.envs[r.PathValue("id")]
		if !ok {
			wire.WriteError(w, http.StatusNotFound, fmt.Sprintf("environment %q is not declared in the config file (local.environments)", r.PathValue("id")))
			return
		}
		writeJSON(w, http.StatusOK, b.environmentView(e))
	})
	mux.HandleFunc("GET /v1/vaults", func(w http.ResponseWriter, r *http.Request) {
		var out []vaultView
		for _, id := range slices.Sorted(mapKeys(b.vaults)) {
			out = append(out, b.vaultView(b.vaults[id]))
		}
		writeJSON(w, http.StatusOK, newList(out, func(v vaultView) string { return v.ID }))
	})
	mux.HandleFunc("GET /v1/vaults/{id}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := b.vaults[r.PathValue("id")]
		if !ok {
			wire.WriteError(w, http.StatusNotFound, fmt.Sprintf("vault %q is not declared in the config file (local.vaults)", r.PathValue("id")))
			return
		}
		writeJSON(w, http.StatusOK, b.vaultView(v))
	})
	for _, kind := range []struct{ path, key string }{
		{"/v1/agents", "local.agents"}, {"/v1/environments", "local.environments"}, {"/v1/vaults", "local.vaults"},
	} {
		readOnly := func(w http.ResponseWriter, r *http.Request) {
			wire.WriteError(w, http.StatusBadRequest, fmt.Sprintf(
				"%s %s: on the local backend these are declared in the config file (%s) and are read-only; edit the config and restart the daemon",
				r.Method, r.URL.Path, kind.key))
		}
		for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
			mux.HandleFunc(m+" "+kind.path, readOnly)
			mux.HandleFunc(m+" "+kind.path+"/", readOnly)
		}
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (b *Backend) catalogAgent(a Agent) catalogAgentView {
	seen := b.firstSeen["agent/"+a.ID+"/"+strconv.FormatInt(a.Version, 10)]
	first := b.firstSeen["agent/"+a.ID+"/"+strconv.FormatInt(b.agents[a.ID][0].Version, 10)]
	return catalogAgentView{agentView: b.agentView(a.ID, a.Version), CreatedAt: first, UpdatedAt: seen, Metadata: map[string]string{}}
}

func (b *Backend) environmentView(e Environment) environmentView {
	seen := b.firstSeen["environment/"+e.ID].Format(time.RFC3339Nano)
	return environmentView{Type: "environment", ID: e.ID, Name: e.ID, Config: map[string]string{"type": "self_hosted"},
		Metadata: map[string]string{}, CreatedAt: seen, UpdatedAt: seen, Scope: "organization"}
}

// vaultView never includes a value: only that the vault exists.
func (b *Backend) vaultView(v Vault) vaultView {
	seen := b.firstSeen["vault/"+v.ID]
	return vaultView{Type: "vault", ID: v.ID, DisplayName: v.ID, Metadata: map[string]string{}, CreatedAt: seen, UpdatedAt: seen}
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
