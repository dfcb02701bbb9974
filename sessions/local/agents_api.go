package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/sandbox0/sandbox0d/internal/wire"
)

// Agents through the API: create, retrieve, list, update (a new version
// when anything changes), archive, versions. Config-declared agents
// (local.agents) are served alongside, read-only.

const agentIDPrefix = "agent_"

// agentObject is the official agent object (BetaManagedAgentsAgent).
type agentObject struct {
	Type              string            `json:"type"`
	ID                string            `json:"id"`
	Version           int64             `json:"version"`
	Name              string            `json:"name"`
	Description       *string           `json:"description"`
	System            *string           `json:"system"`
	Model             modelConfig       `json:"model"`
	ExecutionIdentity map[string]string `json:"execution_identity"`
	MCPServers        []map[string]any  `json:"mcp_servers"`
	Skills            []struct{}        `json:"skills"`
	Tools             []map[string]any  `json:"tools"`
	Multiagent        *struct{}         `json:"multiagent"`
	Metadata          map[string]string `json:"metadata"`
	ArchivedAt        *time.Time        `json:"archived_at"`
	CreatedAt         time.Time         `json:"created_at"`
	UpdatedAt         time.Time         `json:"updated_at"`
}

// apiAgentObject renders a stored API agent version.
func apiAgentObject(a apiAgent) agentObject {
	o := agentObject{Type: "agent", ID: a.ID, Version: a.Version, Name: a.Name, Description: a.Description,
		System: a.System, Model: a.Model, ExecutionIdentity: map[string]string{"type": "service_account"},
		MCPServers: []map[string]any{}, Skills: []struct{}{}, Tools: []map[string]any{},
		Metadata: a.Metadata, ArchivedAt: utcPtr(a.ArchivedAt), CreatedAt: a.CreatedAt.UTC(), UpdatedAt: a.UpdatedAt.UTC()}
	if o.Metadata == nil {
		o.Metadata = map[string]string{}
	}
	for _, s := range a.MCPServers {
		o.MCPServers = append(o.MCPServers, map[string]any{"type": "url", "name": s.Name, "url": s.URL})
	}
	for _, ts := range a.Tools {
		o.Tools = append(o.Tools, toolsetObject(ts))
	}
	return o
}

func policyObject(p string) map[string]string { return map[string]string{"type": p} }

func toolsetObject(ts toolset) map[string]any {
	configs := []map[string]any{}
	for _, c := range ts.Configs {
		m := map[string]any{"name": c.Name, "enabled": c.Enabled, "permission_policy": policyObject(c.PermissionPolicy)}
		if ts.Type == agentToolsetType {
			m["type"] = c.Name
		}
		configs = append(configs, m)
	}
	out := map[string]any{"type": ts.Type, "configs": configs, "default_config": map[string]any{
		"enabled": ts.DefaultConfig.Enabled, "permission_policy": policyObject(ts.DefaultConfig.PermissionPolicy)}}
	if ts.MCPServerName != "" {
		out["mcp_server_name"] = ts.MCPServerName
	}
	return out
}

// configAgentObject renders a config-declared agent version.
func (b *Backend) configAgentObject(a Agent) agentObject {
	v := b.agentView(a.ID, a.Version)
	o := agentObject{Type: "agent", ID: a.ID, Version: a.Version, Name: v.Name, Description: v.Description,
		System: v.System, Model: modelConfig{ID: v.Model["id"]}, ExecutionIdentity: v.ExecutionIdentity,
		MCPServers: []map[string]any{}, Skills: []struct{}{}, Tools: []map[string]any{},
		Metadata:  configMetadata("local.agents"),
		CreatedAt: b.firstSeen["agent/"+a.ID+"/"+strconv.FormatInt(b.agents[a.ID][0].Version, 10)].UTC(),
		UpdatedAt: b.firstSeen["agent/"+a.ID+"/"+strconv.FormatInt(a.Version, 10)].UTC()}
	return o
}

// configMetadata marks an object declared in the config file, and where.
func configMetadata(key string) map[string]string {
	return map[string]string{"sandbox0d_source": "config", "sandbox0d_config_key": key}
}

// readOnlyConfig is the answer to a write on a config-declared object.
func readOnlyConfig(kind, id, key string) error {
	return conflict("%s %q is declared in the config file (%s) and is read-only through the API; "+
		"edit %s and restart the daemon, or create one through the API (POST /v1/%ss) to manage it there",
		kind, id, key, key, kind)
}

// agentDefinition is what create and update decode: the parts a version is
// made of.
type agentDefinition struct {
	name        *string
	description **string // nil: keep; *nil: clear
	system      **string
	model       *modelConfig
	tools       *[]toolset
	mcpServers  *[]mcpServer
	metadata    map[string]*string
	version     *int64
}

var agentFields = []string{"name", "description", "system", "model", "tools", "mcp_servers", "metadata",
	"skills", "multiagent", "execution_identity", "version"}

// decodeAgent reads a create (update false) or update body.
func decodeAgent(o jsonObject, update bool) (agentDefinition, error) {
	var d agentDefinition
	if !update && o.present("version") {
		return d, fieldErr("version", "is for updates only")
	}
	if o.present("name") || !update {
		n, err := o.text("name", true, 1, 255)
		if err != nil {
			return d, err
		}
		d.name = &n
	}
	for _, f := range []struct {
		key string
		dst ***string
		max int
	}{{"description", &d.description, 2048}, {"system", &d.system, 100_000}} {
		if !o.present(f.key) {
			continue
		}
		s, err := o.text(f.key, false, 0, f.max)
		if err != nil {
			return d, err
		}
		var v *string
		if s != "" {
			v = &s
		}
		*f.dst = &v
	}
	switch {
	case o.has("model"):
		m, err := decodeModel(o.fields["model"], "model")
		if err != nil {
			return d, err
		}
		d.model = &m
	case !update || o.present("model"):
		return d, fieldErr("model", "is required (a model id such as claude-sonnet-4-6)")
	}
	if o.present("tools") {
		items, err := o.array("tools")
		if err != nil {
			return d, err
		}
		ts, err := decodeTools(items, "tools")
		if err != nil {
			return d, err
		}
		d.tools = &ts
	}
	if o.present("mcp_servers") {
		items, err := o.array("mcp_servers")
		if err != nil {
			return d, err
		}
		s, err := decodeMCPServers(items, "mcp_servers")
		if err != nil {
			return d, err
		}
		d.mcpServers = &s
	}
	var err error
	if d.metadata, err = o.metadataPatch("metadata"); err != nil {
		return d, err
	}
	if items, err := o.array("skills"); err != nil {
		return d, err
	} else if len(items) > 0 {
		return d, fieldErr("skills", "skills are not available on the local backend (Claude Code loads none here); omit skills")
	}
	if o.has("multiagent") {
		return d, fieldErr("multiagent", "multiagent orchestration is not available on the local backend; omit it or send null")
	}
	if o.has("execution_identity") {
		eo, err := o.object("execution_identity", "type")
		if err != nil {
			return d, err
		}
		if t, err := eo.str("type"); err != nil {
			return d, err
		} else if t != "service_account" {
			return d, fieldErr("execution_identity.type", "local sessions run as the daemon's own user; only service_account (the default) applies, got %q", t)
		}
	}
	if d.version, err = o.integer("version"); err != nil {
		return d, err
	} else if d.version != nil && *d.version < 1 {
		return d, fieldErr("version", "must be at least 1, got %d", *d.version)
	}
	return d, nil
}

// apply makes the next version of a (the zero agent for a create).
func (d agentDefinition) apply(a apiAgent) (apiAgent, error) {
	next := a
	if d.name != nil {
		next.Name = *d.name
	}
	if d.description != nil {
		next.Description = *d.description
	}
	if d.system != nil {
		next.System = *d.system
	}
	if d.model != nil {
		next.Model = *d.model
	}
	if d.tools != nil {
		next.Tools = *d.tools
	}
	if d.mcpServers != nil {
		next.MCPServers = *d.mcpServers
	}
	md, err := applyMetadata(a.Metadata, d.metadata, "metadata")
	if err != nil {
		return next, err
	}
	next.Metadata = md
	if len(next.Metadata) == 0 {
		next.Metadata = nil
	}
	if err := checkMCPReferences(next.Tools, next.MCPServers); err != nil {
		return next, err
	}
	// The harness must be able to run it: refuse now, not at the first turn.
	if _, err := claudeCodeConfig(next, ""); err != nil {
		return next, err
	}
	return next, nil
}

func (b *Backend) agentRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/agents", b.handleCreateAgent)
	mux.HandleFunc("GET /v1/agents", b.handleListAgents)
	mux.HandleFunc("GET /v1/agents/{id}", b.handleGetAgent)
	mux.HandleFunc("POST /v1/agents/{id}", b.handleUpdateAgent)
	mux.HandleFunc("POST /v1/agents/{id}/archive", b.handleArchiveAgent)
	mux.HandleFunc("GET /v1/agents/{id}/versions", b.handleAgentVersions)
}

func (b *Backend) handleCreateAgent(w http.ResponseWriter, r *http.Request) {
	o, ok := readBody(w, r, agentFields...)
	if !ok {
		return
	}
	d, err := decodeAgent(o, false)
	if err != nil {
		b.writeCatalogError(w, "creating an agent", err)
		return
	}
	now := b.cfg.Now().UTC()
	id := b.mintID(agentIDPrefix, bucketAPIAgents)
	a, err := b.catalog.putAgentVersion(id, func(_ *apiAgent) (apiAgent, error) {
		next, err := d.apply(apiAgent{ID: id})
		next.Version, next.CreatedAt, next.UpdatedAt = 1, now, now
		return next, err
	})
	if err != nil {
		b.writeCatalogError(w, "creating an agent", err)
		return
	}
	b.log.Info("agent created", "agent_id", a.ID, "version", a.Version)
	writeJSON(w, http.StatusOK, apiAgentObject(a))
}

func (b *Backend) handleGetAgent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var version int64
	if v := r.URL.Query().Get("version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			wire.WriteError(w, http.StatusBadRequest, fmt.Sprintf("version: %q is not a positive integer", v))
			return
		}
		version = n
	}
	if a, ok := b.configAgent(id, version); ok {
		writeJSON(w, http.StatusOK, b.configAgentObject(a))
		return
	}
	versions, err := b.catalog.agentVersions(id)
	if err != nil {
		b.writeCatalogError(w, "reading an agent", err)
		return
	}
	for _, a := range versions {
		if version == 0 && a.Version == versions[len(versions)-1].Version || a.Version == version {
			writeJSON(w, http.StatusOK, apiAgentObject(a))
			return
		}
	}
	wire.WriteError(w, http.StatusNotFound, b.agentNotFound(id, version).Error())
}

func (b *Backend) handleUpdateAgent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := b.agents[id]; ok {
		b.writeCatalogError(w, "updating an agent", readOnlyConfig("agent", id, "local.agents"))
		return
	}
	o, ok := readBody(w, r, agentFields...)
	if !ok {
		return
	}
	d, err := decodeAgent(o, true)
	if err != nil {
		b.writeCatalogError(w, "updating an agent", err)
		return
	}
	now := b.cfg.Now().UTC()
	a, err := b.catalog.putAgentVersion(id, func(latest *apiAgent) (apiAgent, error) {
		if latest == nil {
			return apiAgent{}, notFound("agent %q was not found", id)
		}
		if latest.ArchivedAt != nil {
			return apiAgent{}, conflict("agent %s is archived; archived agents cannot be updated (create a new agent)", id)
		}
		if d.version != nil && *d.version != latest.Version {
			return apiAgent{}, conflict("version: agent %s is at version %d, not %d; retrieve it and apply your change to the current version",
				id, latest.Version, *d.version)
		}
		next, err := d.apply(*latest)
		if err != nil {
			return apiAgent{}, err
		}
		if sameDefinition(next, *latest) {
			return apiAgent{}, errUnchanged
		}
		next.Version, next.UpdatedAt = latest.Version+1, now
		return next, nil
	})
	if errors.Is(err, errUnchanged) {
		// Nothing changed: no new version, the current one as it is.
		versions, rerr := b.catalog.agentVersions(id)
		if rerr != nil || len(versions) == 0 {
			b.writeCatalogError(w, "reading an agent", rerr)
			return
		}
		writeJSON(w, http.StatusOK, apiAgentObject(versions[len(versions)-1]))
		return
	}
	if err != nil {
		b.writeCatalogError(w, "updating an agent", err)
		return
	}
	b.log.Info("agent updated", "agent_id", a.ID, "version", a.Version)
	writeJSON(w, http.StatusOK, apiAgentObject(a))
}

var errUnchanged = errors.New("unchanged")

// sameDefinition compares two versions' definitions (not their times).
func sameDefinition(x, y apiAgent) bool {
	x.Version, x.UpdatedAt, y.Version, y.UpdatedAt = 0, time.Time{}, 0, time.Time{}
	xj, _ := json.Marshal(x)
	yj, _ := json.Marshal(y)
	return reflect.DeepEqual(xj, yj)
}

func (b *Backend) handleArchiveAgent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := b.agents[id]; ok {
		b.writeCatalogError(w, "archiving an agent", readOnlyConfig("agent", id, "local.agents"))
		return
	}
	versions, err := b.catalog.archiveAgent(id, b.cfg.Now().UTC())
	if errors.Is(err, errNoRecord) {
		wire.WriteError(w, http.StatusNotFound, fmt.Sprintf("agent %q was not found", id))
		return
	}
	if err != nil {
		b.writeCatalogError(w, "archiving an agent", err)
		return
	}
	b.log.Info("agent archived", "agent_id", id)
	writeJSON(w, http.StatusOK, apiAgentObject(versions[len(versions)-1]))
}

func (b *Backend) handleListAgents(w http.ResponseWriter, r *http.Request) {
	q, err := parseCatalogList(r, true)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	var items []listItem
	for id, versions := range b.agents {
		o := b.configAgentObject(versions[len(versions)-1])
		items = append(items, listItem{id: id, created: o.CreatedAt, value: o})
	}
	api, err := b.catalog.agents()
	if err != nil {
		b.writeCatalogError(w, "listing agents", err)
		return
	}
	for _, a := range api {
		items = append(items, listItem{id: a.ID, created: a.CreatedAt, archived: a.ArchivedAt != nil, value: apiAgentObject(a)})
	}
	b.writePage(w, "agents", q, items)
}

func (b *Backend) handleAgentVersions(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	q, err := parseCatalogList(r, false)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	q.includeArchived = true
	var items []listItem
	if versions, ok := b.agents[id]; ok {
		for _, a := range versions {
			o := b.configAgentObject(a)
			items = append(items, listItem{id: fmt.Sprintf("%020d", a.Version), created: o.UpdatedAt, value: o})
		}
	} else {
		versions, err := b.catalog.agentVersions(id)
		if err != nil {
			b.writeCatalogError(w, "listing agent versions", err)
			return
		}
		if len(versions) == 0 {
			wire.WriteError(w, http.StatusNotFound, b.agentNotFound(id, 0).Error())
			return
		}
		for _, a := range versions {
			items = append(items, listItem{id: fmt.Sprintf("%020d", a.Version), created: a.UpdatedAt, value: apiAgentObject(a)})
		}
	}
	b.writePage(w, "agents/"+id+"/versions", q, items)
}
