package local

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"slices"

	"github.com/sandbox0/sandbox0d/sessions/local/claudecode"
)

// An agent created through the API runs on the built-in claude-code
// harness. This file maps its definition onto Claude Code's command line;
// docs/claude-code.md has the same mapping as a table.
//
//	model.id                       --model
//	model.effort                   --effort
//	system                         --system-prompt (replaces Claude Code's own)
//	agent_toolset_20260401         --tools: the enabled tools, by their Claude Code names
//	  always_allow                 --allowedTools <Tool>
//	  auto                         --permission-mode auto (Claude Code's classifier decides)
//	  enabled: false               left out of --tools
//	mcp_servers + mcp_toolset      --mcp-config {"mcpServers": …} --strict-mcp-config
//	  always_allow                 --allowedTools mcp__<server> (or mcp__<server>__<tool>)
//	  enabled: false               --disallowedTools mcp__<server> (or …__<tool>)
//
// With no auto policy anywhere the permission mode is dontAsk: every call
// the allow list does not name is denied, never left waiting for a prompt.

// claudeToolNames are the Claude Code names of agent_toolset_20260401's tools.
var claudeToolNames = map[string]string{
	"bash": "Bash", "edit": "Edit", "read": "Read", "write": "Write",
	"glob": "Glob", "grep": "Grep", "web_fetch": "WebFetch", "web_search": "WebSearch",
}

// toolState is one tool's effective config.
func (ts toolset) config(name string) toolConfig {
	for _, c := range ts.Configs {
		if c.Name == name {
			return c
		}
	}
	return toolConfig{Name: name, Enabled: ts.DefaultConfig.Enabled, PermissionPolicy: ts.DefaultConfig.PermissionPolicy}
}

// claudeCodeConfig maps an API agent onto the harness's settings. Errors
// name the field of the agent that Claude Code cannot express.
func claudeCodeConfig(a apiAgent, binary string) (*claudecode.Config, error) {
	cfg := &claudecode.Config{Model: a.Model.ID, Effort: a.Model.Effort, Binary: binary}
	if a.System != nil {
		cfg.System = *a.System
	}
	builtin := []string{}
	auto := false
	for _, ts := range a.Tools {
		if ts.Type != agentToolsetType {
			continue
		}
		for _, name := range agentToolNames {
			c := ts.config(name)
			if !c.Enabled {
				continue
			}
			builtin = append(builtin, claudeToolNames[name])
			switch c.PermissionPolicy {
			case policyAllow:
				cfg.AllowedTools = append(cfg.AllowedTools, claudeToolNames[name])
			case policyAuto:
				auto = true
			}
		}
	}
	cfg.Tools = &builtin

	servers := map[string]any{}
	for _, s := range a.MCPServers {
		servers[s.Name] = map[string]string{"type": "http", "url": s.URL}
	}
	for i, ts := range a.Tools {
		if ts.Type != mcpToolsetType {
			continue
		}
		prefix := "mcp__" + ts.MCPServerName
		d := ts.DefaultConfig
		if d.Enabled && d.PermissionPolicy == policyAllow {
			cfg.AllowedTools = append(cfg.AllowedTools, prefix)
		}
		if d.Enabled && d.PermissionPolicy == policyAuto {
			auto = true
		}
		anyEnabled := d.Enabled
		for j, c := range ts.Configs {
			tool := prefix + "__" + c.Name
			switch {
			case !c.Enabled:
				cfg.DisallowedTools = append(cfg.DisallowedTools, tool)
			case c.PermissionPolicy == policyAllow:
				cfg.AllowedTools = append(cfg.AllowedTools, tool)
				anyEnabled = true
			case c.PermissionPolicy == policyAuto && !d.Enabled:
				return nil, fieldErr(fmt.Sprintf("tools[%d].configs[%d].permission_policy", i, j),
					"auto for one tool of a server whose default_config is disabled cannot be expressed in Claude Code "+
						"(auto would reach the server's other tools too); use always_allow, or enable the server by default")
			default:
				auto, anyEnabled = true, true
			}
		}
		if !anyEnabled {
			cfg.DisallowedTools = append(cfg.DisallowedTools, prefix)
		}
	}
	if len(servers) > 0 {
		data, err := json.Marshal(map[string]any{"mcpServers": servers})
		if err != nil {
			return nil, err
		}
		cfg.MCPConfig = string(data)
	}
	cfg.PermissionMode = "dontAsk"
	if auto {
		cfg.PermissionMode = "auto"
	}
	slices.Sort(cfg.AllowedTools)
	cfg.AllowedTools = slices.Compact(cfg.AllowedTools)
	return cfg, cfg.Validate()
}

// mcpHosts are the hosts of an agent's MCP servers, which a limited
// environment with allow_mcp_servers lets the session reach.
func mcpHosts(servers []mcpServer) []string {
	var hosts []string
	for _, s := range servers {
		u, err := url.Parse(s.URL)
		if err != nil {
			continue
		}
		host := u.Hostname()
		if port := u.Port(); port != "" {
			host = net.JoinHostPort(host, port)
		}
		hosts = append(hosts, host)
	}
	return hosts
}

// runnableAgent is the Agent a session of an API agent version runs.
func (b *Backend) runnableAgent(a apiAgent) (Agent, error) {
	cc, err := claudeCodeConfig(a, b.cfg.ClaudeBinary)
	if err != nil {
		return Agent{}, err
	}
	out := Agent{ID: a.ID, Version: a.Version, Name: a.Name, Model: a.Model.ID, ClaudeCode: cc, Env: b.cfg.ClaudeEnv,
		mcpHosts: mcpHosts(a.MCPServers), fromAPI: true, archived: a.ArchivedAt != nil}
	if a.System != nil {
		out.System = *a.System
	}
	if a.Description != nil {
		out.Description = *a.Description
	}
	return out, nil
}
