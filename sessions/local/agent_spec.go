package local

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// The parts of an agent definition, in the official shapes, as an API
// agent stores them; decoding refuses what the local claude-code harness
// cannot honour, naming the field (claude_code_map.go maps the rest onto
// Claude Code's flags).

// modelConfig is an agent's model: a bare id string or {id, speed, effort}.
type modelConfig struct {
	ID     string `json:"id"`
	Speed  string `json:"speed,omitempty"`
	Effort string `json:"effort,omitempty"`
}

// toolset is one entry of an agent's tools: agent_toolset_20260401 or
// mcp_toolset.
type toolset struct {
	Type          string       `json:"type"`
	MCPServerName string       `json:"mcp_server_name,omitempty"`
	DefaultConfig toolConfig   `json:"default_config"`
	Configs       []toolConfig `json:"configs"`
}

// toolConfig is a default_config (no name) or a per-tool config.
type toolConfig struct {
	Name             string `json:"name,omitempty"`
	Enabled          bool   `json:"enabled"`
	PermissionPolicy string `json:"permission_policy"` // always_allow, auto (always_ask is refused)
}

// mcpServer is a url MCP server.
type mcpServer struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// Values the official API documents.
const (
	agentToolsetType = "agent_toolset_20260401"
	mcpToolsetType   = "mcp_toolset"
	policyAllow      = "always_allow"
	policyAsk        = "always_ask"
	policyAuto       = "auto"
	maxTools         = 256
	maxMCPServers    = 20
)

// agentToolNames are the tools of agent_toolset_20260401.
var agentToolNames = []string{"bash", "edit", "read", "write", "glob", "grep", "web_fetch", "web_search"}

var effortLevels = []string{"low", "medium", "high", "xhigh", "max"}

// decodeModel reads model: a string, or an object.
func decodeModel(raw json.RawMessage, path string) (modelConfig, error) {
	var id string
	if json.Unmarshal(raw, &id) == nil {
		if strings.TrimSpace(id) == "" {
			return modelConfig{}, fieldErr(path, "must name a model, e.g. claude-sonnet-4-6")
		}
		return modelConfig{ID: id}, nil
	}
	o, err := decodeObject(raw, path, "id", "speed", "effort", "inference_geo")
	if err != nil {
		return modelConfig{}, fieldErr(path, "must be a model id string or an object {id, speed, effort}")
	}
	m := modelConfig{}
	if m.ID, err = o.text("id", true, 1, 256); err != nil {
		return m, err
	}
	if m.Speed, err = o.str("speed"); err != nil {
		return m, err
	}
	switch m.Speed {
	case "", "standard":
	case "fast":
		return m, fieldErr(o.at("speed"), "fast is not available on the local backend: Claude Code has no fast mode flag; omit it or use standard")
	default:
		return m, fieldErr(o.at("speed"), "must be standard or fast, got %q", m.Speed)
	}
	if o.has("effort") {
		raw := o.fields["effort"]
		var level string
		if json.Unmarshal(raw, &level) != nil {
			eo, err := o.object("effort", "type")
			if err != nil {
				return m, err
			}
			if level, err = eo.str("type"); err != nil {
				return m, err
			}
		}
		if !slices.Contains(effortLevels, level) {
			return m, fieldErr(o.at("effort"), "must be one of %s, got %q", strings.Join(effortLevels, ", "), level)
		}
		m.Effort = level
	}
	if o.has("inference_geo") {
		return m, fieldErr(o.at("inference_geo"), "the local backend runs inference through the LLM vault's API endpoint and cannot pick a region; omit it")
	}
	return m, nil
}

// decodePolicy reads a permission_policy object; def when absent.
func decodePolicy(o jsonObject, def string) (string, error) {
	if !o.has("permission_policy") {
		return def, nil
	}
	po, err := o.object("permission_policy", "type")
	if err != nil {
		return "", err
	}
	t, err := po.str("type")
	if err != nil {
		return "", err
	}
	switch t {
	case policyAllow, policyAuto:
		return t, nil
	case policyAsk:
		return "", fieldErr(po.at("type"), "always_ask needs someone to confirm each call (user.tool_confirmation), "+
			"which a local claude-code session cannot wait for; use always_allow or auto")
	default:
		return "", fieldErr(po.at("type"), "must be always_allow, always_ask or auto, got %q", t)
	}
}

// decodeToolConfig reads a default_config (named false) or a configs[] item.
func decodeToolConfig(raw json.RawMessage, path string, named bool, names []string, defEnabled bool, defPolicy string) (toolConfig, error) {
	known := []string{"enabled", "permission_policy"}
	if named {
		known = append(known, "name", "type")
	}
	o, err := decodeObject(raw, path, known...)
	if err != nil {
		return toolConfig{}, err
	}
	c := toolConfig{Enabled: defEnabled}
	if named {
		if c.Name, err = o.text("name", true, 1, 128); err != nil {
			return c, err
		}
		if names != nil && !slices.Contains(names, c.Name) {
			return c, fieldErr(o.at("name"), "%q is not a tool of %s (its tools are %s)", c.Name, agentToolsetType, strings.Join(names, ", "))
		}
		if t, err := o.str("type"); err != nil {
			return c, err
		} else if t != "" && t != c.Name {
			return c, fieldErr(o.at("type"), "must be %q (the tool's name), got %q", c.Name, t)
		}
	}
	if e, err := o.boolean("enabled"); err != nil {
		return c, err
	} else if e != nil {
		c.Enabled = *e
	}
	if c.PermissionPolicy, err = decodePolicy(o, defPolicy); err != nil {
		return c, err
	}
	return c, nil
}

// decodeTools reads tools. MCP toolsets default to always_ask in the
// official API, so they need an explicit policy here.
func decodeTools(items []json.RawMessage, path string) ([]toolset, error) {
	if len(items) > maxTools {
		return nil, fieldErr(path, "may hold at most %d tools, got %d", maxTools, len(items))
	}
	var out []toolset
	seenAgent := false
	seenMCP := map[string]int{}
	for i, raw := range items {
		p := fmt.Sprintf("%s[%d]", path, i)
		var head struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return nil, fieldErr(p, "must be an object with a type")
		}
		switch head.Type {
		case agentToolsetType:
			if seenAgent {
				return nil, fieldErr(p+".type", "%s may appear once", agentToolsetType)
			}
			seenAgent = true
			ts, err := decodeToolset(raw, p, "", agentToolNames, policyAllow)
			if err != nil {
				return nil, err
			}
			out = append(out, ts)
		case mcpToolsetType:
			o, err := decodeObject(raw, p, "type", "mcp_server_name", "default_config", "configs")
			if err != nil {
				return nil, err
			}
			name, err := o.text("mcp_server_name", true, 1, 255)
			if err != nil {
				return nil, err
			}
			if j, dup := seenMCP[name]; dup {
				return nil, fieldErr(o.at("mcp_server_name"), "%q already has a toolset at %s[%d]", name, path, j)
			}
			seenMCP[name] = i
			if !o.has("default_config") {
				return nil, fieldErr(o.at("default_config"), "MCP toolsets default to always_ask, which a local claude-code "+
					"session cannot wait for; set default_config.permission_policy to always_allow or auto")
			}
			ts, err := decodeToolset(raw, p, name, nil, "")
			if err != nil {
				return nil, err
			}
			out = append(out, ts)
		case "custom":
			return nil, fieldErr(p+".type", "custom tools need the client to run each call (agent.custom_tool_use), "+
				"which the local claude-code harness does not support; use an MCP server (mcp_toolset) instead")
		case "":
			return nil, fieldErr(p+".type", "is required (%s or %s)", agentToolsetType, mcpToolsetType)
		default:
			return nil, fieldErr(p+".type", "%q is not a toolset the local backend has (it has %s and %s)", head.Type, agentToolsetType, mcpToolsetType)
		}
	}
	return out, nil
}

// decodeToolset reads an agent or MCP toolset.
func decodeToolset(raw json.RawMessage, p, server string, names []string, defPolicy string) (toolset, error) {
	o, err := decodeObject(raw, p, "type", "mcp_server_name", "default_config", "configs")
	if err != nil {
		return toolset{}, err
	}
	ts := toolset{Type: agentToolsetType, Configs: []toolConfig{}}
	if server != "" {
		ts.Type, ts.MCPServerName = mcpToolsetType, server
	} else if o.present("mcp_server_name") {
		return ts, fieldErr(o.at("mcp_server_name"), "belongs to mcp_toolset only")
	}
	ts.DefaultConfig = toolConfig{Enabled: true, PermissionPolicy: defPolicy}
	if o.has("default_config") {
		if ts.DefaultConfig, err = decodeToolConfig(o.fields["default_config"], o.at("default_config"), false, nil, true, defPolicy); err != nil {
			return ts, err
		}
	}
	if ts.DefaultConfig.PermissionPolicy == "" {
		return ts, fieldErr(o.at("default_config.permission_policy"), "is required here (always_allow or auto)")
	}
	items, err := o.array("configs")
	if err != nil {
		return ts, err
	}
	seen := map[string]bool{}
	for j, c := range items {
		cp := fmt.Sprintf("%s[%d]", o.at("configs"), j)
		tc, err := decodeToolConfig(c, cp, true, names, ts.DefaultConfig.Enabled, ts.DefaultConfig.PermissionPolicy)
		if err != nil {
			return ts, err
		}
		if seen[tc.Name] {
			return ts, fieldErr(cp+".name", "%q is configured twice", tc.Name)
		}
		seen[tc.Name] = true
		ts.Configs = append(ts.Configs, tc)
	}
	return ts, nil
}

// decodeMCPServers reads mcp_servers (url type only).
func decodeMCPServers(items []json.RawMessage, path string) ([]mcpServer, error) {
	if len(items) > maxMCPServers {
		return nil, fieldErr(path, "may hold at most %d servers, got %d", maxMCPServers, len(items))
	}
	var out []mcpServer
	seen := map[string]bool{}
	for i, raw := range items {
		p := fmt.Sprintf("%s[%d]", path, i)
		o, err := decodeObject(raw, p, "type", "name", "url")
		if err != nil {
			return nil, err
		}
		if t, err := o.str("type"); err != nil {
			return nil, err
		} else if t != "" && t != "url" {
			return nil, fieldErr(o.at("type"), "must be url, got %q", t)
		}
		s := mcpServer{}
		if s.Name, err = o.text("name", true, 1, 255); err != nil {
			return nil, err
		}
		if seen[s.Name] {
			return nil, fieldErr(o.at("name"), "%q is used by another server; names must be unique", s.Name)
		}
		seen[s.Name] = true
		if s.URL, err = o.text("url", true, 1, 2048); err != nil {
			return nil, err
		}
		u, perr := url.Parse(s.URL)
		if perr != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fieldErr(o.at("url"), "must be an http(s) URL, got %q", s.URL)
		}
		out = append(out, s)
	}
	return out, nil
}

// checkMCPReferences applies the official rule: every server is used by
// an mcp_toolset, and every mcp_toolset names a server.
func checkMCPReferences(tools []toolset, servers []mcpServer) error {
	names := map[string]bool{}
	for _, s := range servers {
		names[s.Name] = true
	}
	used := map[string]bool{}
	for i, ts := range tools {
		if ts.Type != mcpToolsetType {
			continue
		}
		if !names[ts.MCPServerName] {
			return fieldErr(fmt.Sprintf("tools[%d].mcp_server_name", i), "%q is not a server of mcp_servers", ts.MCPServerName)
		}
		used[ts.MCPServerName] = true
	}
	for i, s := range servers {
		if !used[s.Name] {
			return fieldErr(fmt.Sprintf("mcp_servers[%d]", i), "server %q is not referenced by any mcp_toolset in tools; add {\"type\": \"mcp_toolset\", \"mcp_server_name\": %q, ...}", s.Name, s.Name)
		}
	}
	return nil
}
