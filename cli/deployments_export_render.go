package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// exportDeployment is a deployment as GET returns it, with the create
// shape's fields kept as the API wrote them (numbers as written).
type exportDeployment struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Description   *string           `json:"description"`
	Agent         agentRef          `json:"agent"`
	EnvironmentID string            `json:"environment_id"`
	InitialEvents []any             `json:"initial_events"`
	Resources     []map[string]any  `json:"resources"`
	VaultIDs      []string          `json:"vault_ids"`
	Metadata      map[string]string `json:"metadata"`
	Schedule      *struct {
		Expression string `json:"expression"`
		Timezone   string `json:"timezone"`
	} `json:"schedule"`
	Status       string        `json:"status"`
	PausedReason *pausedReason `json:"paused_reason"`
	ArchivedAt   *time.Time    `json:"archived_at"`
	ManagedBy    *struct {
		Set string `json:"set"`
		Key string `json:"key"`
	} `json:"managed_by"`
}

// renderExport writes one deployment in the create shape, so that applying
// the file to the same daemon plans it unchanged apart from tokens: the
// agent keeps its pinned version, and a managed deployment keeps its key.
// Run-time state (pause, last run) is not written: apply leaves it alone
// when a file does not state it.
func renderExport(d exportDeployment) ([]byte, error) {
	doc := &yaml.Node{Kind: yaml.MappingNode}
	head := []string{fmt.Sprintf("Exported from deployment %s by `sandbox0d deployments export`.", d.ID)}
	if d.ManagedBy != nil {
		head = append(head, fmt.Sprintf("Owned by deployment set %q: apply it with --set %s to keep its key.", d.ManagedBy.Set, d.ManagedBy.Set))
		addField(doc, "key", yamlStr(d.ManagedBy.Key))
	} else {
		// The first apply takes this very deployment into the set (same
		// id, runs and history) instead of creating a copy.
		head = append(head, "adopt: makes the first apply take this deployment into the set instead of creating a copy.")
		addField(doc, "adopt", yamlStr(d.ID))
	}
	if d.Status == "paused" {
		head = append(head, "It was paused when exported; add `paused: true` to keep it paused from the files (without it, apply leaves its pause as it is).")
	}
	addField(doc, "name", yamlStr(d.Name))
	if d.Description != nil && *d.Description != "" {
		addField(doc, "description", yamlStr(*d.Description))
	}
	agent := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
	addField(agent, "type", yamlStr("agent"))
	addField(agent, "id", yamlStr(d.Agent.ID))
	addField(agent, "version", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: fmt.Sprint(d.Agent.Version)})
	addField(doc, "agent", agent)
	addField(doc, "environment_id", yamlStr(d.EnvironmentID))
	addField(doc, "initial_events", toYAMLNode(d.InitialEvents))
	if len(d.Resources) > 0 {
		resources := &yaml.Node{Kind: yaml.SequenceNode}
		for i, r := range d.Resources {
			delete(r, "authorization_token") // never echoed; dropped should a daemon ever send one
			node := toYAMLNode(r)
			if r["type"] == "github_repository" {
				env := tokenEnvName(d.Name, i)
				key := yamlStr("authorization_token_env")
				key.HeadComment = "The daemon never returns tokens: export this repository's token in " + env +
					" before `sandbox0d apply`,\nor delete this line if it needs none (apply then drops any token it had)."
				node.Content = append(node.Content, key, yamlStr(env))
			}
			resources.Content = append(resources.Content, node)
		}
		addField(doc, "resources", resources)
	}
	if len(d.VaultIDs) > 0 {
		addField(doc, "vault_ids", toYAMLNode(anySlice(d.VaultIDs)))
	}
	if len(d.Metadata) > 0 {
		meta := make(map[string]any, len(d.Metadata))
		for k, v := range d.Metadata {
			meta[k] = v
		}
		addField(doc, "metadata", toYAMLNode(meta))
	}
	if d.Schedule != nil {
		sched := &yaml.Node{Kind: yaml.MappingNode}
		addField(sched, "type", yamlStr("cron"))
		addField(sched, "expression", yamlStr(d.Schedule.Expression))
		addField(sched, "timezone", yamlStr(d.Schedule.Timezone))
		addField(doc, "schedule", sched)
	}
	doc.HeadComment = strings.Join(head, "\n")
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{doc}}); err != nil {
		return nil, fmt.Errorf("render YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render YAML: %w", err)
	}
	return out.Bytes(), nil
}

func addField(m *yaml.Node, key string, value *yaml.Node) {
	m.Content = append(m.Content, yamlStr(key), value)
}

// yamlStr is a string scalar; the encoder quotes it when plain text would read
// back as another type ("true", "1", "2026-01-01").
func yamlStr(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// toYAMLNode converts a JSON value (decoded with UseNumber) to YAML nodes:
// mapping keys sorted, numbers as the API wrote them.
func toYAMLNode(v any) *yaml.Node {
	switch v := v.(type) {
	case map[string]any:
		n := &yaml.Node{Kind: yaml.MappingNode}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		// "type" first, as the API documents every object; the rest sorted.
		sort.Slice(keys, func(i, j int) bool {
			if (keys[i] == "type") != (keys[j] == "type") {
				return keys[i] == "type"
			}
			return keys[i] < keys[j]
		})
		for _, k := range keys {
			addField(n, k, toYAMLNode(v[k]))
		}
		return n
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for _, item := range v {
			n.Content = append(n.Content, toYAMLNode(item))
		}
		return n
	case string:
		return yamlStr(v)
	case json.Number:
		tag := "!!float"
		if !strings.ContainsAny(v.String(), ".eE") {
			tag = "!!int"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v.String()}
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(v)}
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
}

// tokenEnvName is the placeholder variable for resource i's token:
// TOKEN_<NAME>_<i>, upper case, other characters as '_'.
func tokenEnvName(name string, i int) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(name) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return fmt.Sprintf("TOKEN_%s_%d", strings.Trim(b.String(), "_"), i)
}
