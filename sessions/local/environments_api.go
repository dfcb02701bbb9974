package local

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/sandbox0/sandbox0d/internal/wire"
	"github.com/sandbox0/sandbox0d/sessions/local/egress"
)

// Environments through the API. An environment's config.networking is the
// local environment's egress policy: unrestricted is the host network,
// limited runs the session in a network namespace whose only way out is
// the daemon's egress proxy, allowing allowed_hosts, the package registries
// (allow_package_managers) and the agent's MCP servers (allow_mcp_servers).
// Package installs (config.packages) are refused: sessions run on this
// machine's own system, there is no image to install them into.

const environmentIDPrefix = "env_"

// environmentObject is the official environment object (BetaEnvironment).
type environmentObject struct {
	Type        string            `json:"type"`
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Description *string           `json:"description"`
	Config      map[string]any    `json:"config"`
	Metadata    map[string]string `json:"metadata"`
	ArchivedAt  *string           `json:"archived_at"`
	CreatedAt   string            `json:"created_at"`
	UpdatedAt   string            `json:"updated_at"`
	Scope       string            `json:"scope"` // the whole machine: "organization"
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func networkingObject(n Networking) map[string]any {
	if n.Type != NetworkingLimited {
		return map[string]any{"type": NetworkingUnrestricted}
	}
	hosts := n.AllowedHosts
	if hosts == nil {
		hosts = []string{}
	}
	return map[string]any{"type": NetworkingLimited, "allowed_hosts": hosts,
		"allow_mcp_servers": n.AllowMCPServers, "allow_package_managers": n.AllowPackageManagers}
}

func apiEnvironmentObject(e apiEnvironment) environmentObject {
	o := environmentObject{Type: "environment", ID: e.ID, Name: e.Name, Description: e.Description,
		Metadata: e.Metadata, CreatedAt: rfc3339(e.CreatedAt), UpdatedAt: rfc3339(e.UpdatedAt), Scope: "organization"}
	if o.Metadata == nil {
		o.Metadata = map[string]string{}
	}
	if e.ArchivedAt != nil {
		s := rfc3339(*e.ArchivedAt)
		o.ArchivedAt = &s
	}
	if e.ConfigType == "self_hosted" {
		o.Config = map[string]any{"type": "self_hosted"}
	} else {
		o.Config = map[string]any{"type": "cloud", "networking": networkingObject(e.Networking), "packages": map[string]any{
			"type": "packages", "apt": []string{}, "cargo": []string{}, "gem": []string{}, "go": []string{}, "npm": []string{}, "pip": []string{}}}
	}
	return o
}

// configEnvironmentObject renders a config-declared environment.
func (b *Backend) configEnvironmentObject(e Environment) environmentObject {
	seen := rfc3339(b.firstSeen["environment/"+e.ID])
	return environmentObject{Type: "environment", ID: e.ID, Name: e.ID, Config: map[string]any{"type": "self_hosted"},
		Metadata: configMetadata("local.environments"), CreatedAt: seen, UpdatedAt: seen, Scope: "organization"}
}

// runnableEnvironment is the Environment sessions of an API environment
// run under: its network policy and the defaults of every other setting.
func (b *Backend) runnableEnvironment(e apiEnvironment) Environment {
	return Environment{ID: e.ID, Networking: e.Networking, Timeout: DefaultSessionTimeout,
		MaxOutputBytes: DefaultMaxOutputBytes, MaxEvents: DefaultMaxEvents,
		Limits: Limits{}.withDefaults(b.cfg.MaxConcurrentSessions)}
}

var environmentFields = []string{"name", "description", "config", "metadata", "scope"}

// decodeEnvironmentConfig reads config; cur is the stored policy an update
// keeps where networking is omitted.
func decodeEnvironmentConfig(o jsonObject, cur apiEnvironment) (apiEnvironment, error) {
	co, err := o.object("config", "type", "networking", "packages")
	if err != nil {
		return cur, err
	}
	t, err := co.str("type")
	if err != nil {
		return cur, err
	}
	switch t {
	case "self_hosted":
		if co.has("networking") || co.has("packages") {
			return cur, fieldErr("config.type", "self_hosted takes no networking or packages; use cloud to set them")
		}
		cur.ConfigType, cur.Networking = "self_hosted", Networking{Type: NetworkingUnrestricted}
		return cur, nil
	case "cloud":
	case "":
		return cur, fieldErr("config.type", "is required (cloud, or self_hosted)")
	default:
		return cur, fieldErr("config.type", "must be cloud or self_hosted, got %q", t)
	}
	if cur.ConfigType != "cloud" {
		cur.Networking = Networking{Type: NetworkingUnrestricted}
	}
	cur.ConfigType = "cloud"
	if co.has("networking") {
		no, err := co.object("networking", "type", "allowed_hosts", "allow_mcp_servers", "allow_package_managers")
		if err != nil {
			return cur, err
		}
		nt, err := no.str("type")
		if err != nil {
			return cur, err
		}
		switch nt {
		case NetworkingUnrestricted:
			for _, k := range []string{"allowed_hosts", "allow_mcp_servers", "allow_package_managers"} {
				if no.present(k) {
					return cur, fieldErr(no.at(k), "applies to limited networking only")
				}
			}
			cur.Networking = Networking{Type: NetworkingUnrestricted}
		case NetworkingLimited:
			n := Networking{Type: NetworkingLimited}
			if n.AllowedHosts, err = no.strs("allowed_hosts"); err != nil {
				return cur, err
			}
			for i, h := range n.AllowedHosts {
				if err := egress.CheckHost(h); err != nil {
					return cur, fieldErr(fmt.Sprintf("%s[%d]", no.at("allowed_hosts"), i), "%v (want a host name, *.suffix or an IP, optionally with :port)", err)
				}
			}
			for k, dst := range map[string]*bool{"allow_mcp_servers": &n.AllowMCPServers, "allow_package_managers": &n.AllowPackageManagers} {
				v, err := no.boolean(k)
				if err != nil {
					return cur, err
				}
				*dst = v != nil && *v
			}
			cur.Networking = n
		case "":
			return cur, fieldErr(no.at("type"), "is required (unrestricted or limited)")
		default:
			return cur, fieldErr(no.at("type"), "must be unrestricted or limited, got %q", nt)
		}
	}
	if co.has("packages") {
		po, err := co.object("packages", "type", "apt", "cargo", "gem", "go", "npm", "pip")
		if err != nil {
			return cur, err
		}
		for _, k := range []string{"apt", "cargo", "gem", "go", "npm", "pip"} {
			list, err := po.strs(k)
			if err != nil {
				return cur, err
			}
			if len(list) > 0 {
				return cur, fieldErr(po.at(k), "package installs are not available on the local backend: sessions run on "+
					"this machine's own system, with no image to install into; install what the agent needs on the host, and omit packages")
			}
		}
	}
	return cur, nil
}

func decodeEnvironment(o jsonObject, cur apiEnvironment, create bool) (apiEnvironment, error) {
	if create || o.present("name") {
		n, err := o.text("name", true, 1, 255)
		if err != nil {
			return cur, err
		}
		cur.Name = n
	}
	if o.present("description") {
		d, err := o.text("description", false, 0, 2048)
		if err != nil {
			return cur, err
		}
		cur.Description = nil
		if d != "" || o.has("description") {
			cur.Description = &d
		}
	}
	if s, err := o.str("scope"); err != nil {
		return cur, err
	} else if s != "" && s != "organization" {
		return cur, fieldErr("scope", "the local backend has one account, its machine: only organization applies, got %q", s)
	}
	if create {
		cur.ConfigType, cur.Networking = "cloud", Networking{Type: NetworkingUnrestricted}
	}
	if o.has("config") {
		var err error
		if cur, err = decodeEnvironmentConfig(o, cur); err != nil {
			return cur, err
		}
	}
	patch, err := o.metadataPatch("metadata")
	if err != nil {
		return cur, err
	}
	if cur.Metadata, err = applyMetadata(cur.Metadata, patch, "metadata"); err != nil {
		return cur, err
	}
	return cur, nil
}

func (b *Backend) environmentRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/environments", b.handleCreateEnvironment)
	mux.HandleFunc("GET /v1/environments", b.handleListEnvironments)
	mux.HandleFunc("GET /v1/environments/{id}", b.handleGetEnvironment)
	mux.HandleFunc("POST /v1/environments/{id}", b.handleUpdateEnvironment)
	mux.HandleFunc("DELETE /v1/environments/{id}", b.handleDeleteEnvironment)
	mux.HandleFunc("POST /v1/environments/{id}/archive", b.handleArchiveEnvironment)
}

func (b *Backend) handleCreateEnvironment(w http.ResponseWriter, r *http.Request) {
	o, ok := readBody(w, r, environmentFields...)
	if !ok {
		return
	}
	e, err := decodeEnvironment(o, apiEnvironment{}, true)
	if err != nil {
		b.writeCatalogError(w, "creating an environment", err)
		return
	}
	now := b.cfg.Now().UTC()
	e.ID, e.CreatedAt, e.UpdatedAt = b.mintID(environmentIDPrefix, bucketAPIEnvironments), now, now
	e, err = update(b.catalog, bucketAPIEnvironments, []byte(e.ID), true, func(v *apiEnvironment) error {
		*v = e
		return nil
	})
	if err != nil {
		b.writeCatalogError(w, "creating an environment", err)
		return
	}
	b.log.Info("environment created", "environment_id", e.ID, "networking", e.Networking.Type)
	writeJSON(w, http.StatusOK, apiEnvironmentObject(e))
}

func (b *Backend) handleGetEnvironment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if e, ok := b.envs[id]; ok {
		writeJSON(w, http.StatusOK, b.configEnvironmentObject(e))
		return
	}
	e, err := getOne[apiEnvironment](b.catalog, bucketAPIEnvironments, []byte(id))
	if errors.Is(err, errNoRecord) {
		wire.WriteError(w, http.StatusNotFound, fmt.Sprintf("environment %q was not found (neither in local.environments nor created through the API)", id))
		return
	}
	if err != nil {
		b.writeCatalogError(w, "reading an environment", err)
		return
	}
	writeJSON(w, http.StatusOK, apiEnvironmentObject(e))
}

// changeEnvironment runs one change of an API environment and answers.
func (b *Backend) changeEnvironment(w http.ResponseWriter, id, what string, change func(e *apiEnvironment) error) {
	if _, ok := b.envs[id]; ok {
		b.writeCatalogError(w, what, readOnlyConfig("environment", id, "local.environments"))
		return
	}
	e, err := update(b.catalog, bucketAPIEnvironments, []byte(id), false, change)
	if errors.Is(err, errNoRecord) {
		err = notFound("environment %q was not found", id)
	}
	if err != nil {
		b.writeCatalogError(w, what, err)
		return
	}
	writeJSON(w, http.StatusOK, apiEnvironmentObject(e))
}

func (b *Backend) handleUpdateEnvironment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := b.envs[id]; ok {
		b.writeCatalogError(w, "updating an environment", readOnlyConfig("environment", id, "local.environments"))
		return
	}
	o, ok := readBody(w, r, environmentFields...)
	if !ok {
		return
	}
	now := b.cfg.Now().UTC()
	b.changeEnvironment(w, id, "updating an environment", func(e *apiEnvironment) error {
		next, err := decodeEnvironment(o, *e, false)
		if err != nil {
			return err
		}
		next.UpdatedAt = now
		*e = next
		return nil
	})
}

func (b *Backend) handleArchiveEnvironment(w http.ResponseWriter, r *http.Request) {
	now := b.cfg.Now().UTC()
	b.changeEnvironment(w, r.PathValue("id"), "archiving an environment", func(e *apiEnvironment) error {
		if e.ArchivedAt == nil {
			e.ArchivedAt, e.UpdatedAt = &now, now
		}
		return nil
	})
}

func (b *Backend) handleDeleteEnvironment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := b.envs[id]; ok {
		b.writeCatalogError(w, "deleting an environment", readOnlyConfig("environment", id, "local.environments"))
		return
	}
	err := b.catalog.deleteOne(bucketAPIEnvironments, []byte(id))
	if errors.Is(err, errNoRecord) {
		err = notFound("environment %q was not found", id)
	}
	if err != nil {
		b.writeCatalogError(w, "deleting an environment", err)
		return
	}
	b.log.Info("environment deleted", "environment_id", id)
	writeJSON(w, http.StatusOK, map[string]string{"id": id, "type": "environment_deleted"})
}

func (b *Backend) handleListEnvironments(w http.ResponseWriter, r *http.Request) {
	q, err := parseCatalogList(r, false)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	var items []listItem
	for id, e := range b.envs {
		items = append(items, listItem{id: id, created: b.firstSeen["environment/"+id], value: b.configEnvironmentObject(e)})
	}
	envs, err := listAll[apiEnvironment](b.catalog, bucketAPIEnvironments, nil)
	if err != nil {
		b.writeCatalogError(w, "listing environments", err)
		return
	}
	for _, e := range envs {
		items = append(items, listItem{id: e.ID, created: e.CreatedAt, archived: e.ArchivedAt != nil, value: apiEnvironmentObject(e)})
	}
	b.writePage(w, "environments", q, slices.Clip(items))
}
