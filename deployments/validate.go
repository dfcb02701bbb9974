package deployments

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sandbox0/sandbox0d/schedule"
	"github.com/sandbox0/sandbox0d/sessions"
)

// Limits of the contract.
const (
	MaxNameLen          = 256
	MaxDescriptionLen   = 2048
	MaxIDLen            = 256
	MaxInitialEvents    = 50
	MaxResources        = 500
	MaxVaultIDs         = 50
	MaxMetadataPairs    = 16
	MaxMetadataKeyLen   = 64
	MaxMetadataValueLen = 512
	MaxTokenLen         = 4096
	MaxMountPathLen     = 1024
	MaxTextLen          = 1 << 20
)

func decodeString(field string, raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalid(field, "must be a string")
	}
	return s, nil
}

func decodeName(raw json.RawMessage) (string, error) {
	s, err := decodeString("name", raw)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(s) == "" {
		return "", invalid("name", "must be a non-empty string")
	}
	if n := utf8.RuneCountInString(s); n > MaxNameLen {
		return "", invalid("name", "is %d characters long, at most %d allowed", n, MaxNameLen)
	}
	return s, nil
}

func decodeDescription(raw json.RawMessage) (string, error) {
	s, err := decodeString("description", raw)
	if err != nil {
		return "", err
	}
	if n := utf8.RuneCountInString(s); n > MaxDescriptionLen {
		return "", invalid("description", "is %d characters long, at most %d allowed", n, MaxDescriptionLen)
	}
	return s, nil
}

// decodeID accepts an identifier: non-empty, bounded, no whitespace, control
// characters or slashes (ids end up in paths and log lines).
func decodeID(field string, raw json.RawMessage) (string, error) {
	s, err := decodeString(field, raw)
	if err != nil {
		return "", err
	}
	return s, checkID(field, s)
}

func checkID(field, s string) error {
	if s == "" {
		return invalid(field, "must be a non-empty id")
	}
	if len(s) > MaxIDLen {
		return invalid(field, "is %d bytes long, at most %d allowed", len(s), MaxIDLen)
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == '/' || r == '\\' {
			return invalid(field, "%q is not a valid id: no whitespace, control characters or slashes", s)
		}
	}
	return nil
}

// decodeAgent accepts "agent_…" (latest version) or {"type":"agent","id","version"?}.
func decodeAgent(raw json.RawMessage) (AgentInput, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) > 0 && trimmed[0] == '"' {
		id, err := decodeID("agent", raw)
		return AgentInput{ID: id}, err
	}
	var obj struct {
		Type    *string `json:"type"`
		ID      *string `json:"id"`
		Version *int64  `json:"version"`
	}
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return AgentInput{}, invalid("agent", `must be an agent id string or {"type":"agent","id":…,"version":…}`)
	}
	if err := decodeStrict("agent", raw, &obj); err != nil {
		return AgentInput{}, err
	}
	if obj.Type != nil && *obj.Type != "agent" {
		return AgentInput{}, invalid("agent.type", `must be "agent", got %q`, *obj.Type)
	}
	if obj.ID == nil {
		return AgentInput{}, invalid("agent.id", "is required")
	}
	if err := checkID("agent.id", *obj.ID); err != nil {
		return AgentInput{}, err
	}
	in := AgentInput{ID: *obj.ID}
	if obj.Version != nil {
		if *obj.Version < 1 {
			return AgentInput{}, invalid("agent.version", "must be a positive integer, got %d", *obj.Version)
		}
		in.Version = *obj.Version
	}
	return in, nil
}

func decodeVaultIDs(raw json.RawMessage) ([]string, error) {
	var ids []string
	if err := decodeStrict("vault_ids", raw, &ids); err != nil {
		return nil, err
	}
	if len(ids) > MaxVaultIDs {
		return nil, invalid("vault_ids", "has %d entries, at most %d allowed", len(ids), MaxVaultIDs)
	}
	seen := map[string]bool{}
	for i, id := range ids {
		if err := checkID(fieldAt("vault_ids", i), id); err != nil {
			return nil, err
		}
		if seen[id] {
			return nil, invalid(fieldAt("vault_ids", i), "duplicate vault id %q", id)
		}
		seen[id] = true
	}
	return ids, nil
}

// decodeMetadataPatch decodes a metadata object. With allowNull a null value
// means "delete this key" (update); otherwise values must be strings.
func decodeMetadataPatch(raw json.RawMessage, allowNull bool) (map[string]*string, error) {
	var m map[string]*string
	if err := decodeStrict("metadata", raw, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, invalid("metadata", "must be an object")
	}
	if !allowNull && len(m) > MaxMetadataPairs {
		return nil, invalid("metadata", "has %d pairs, at most %d allowed", len(m), MaxMetadataPairs)
	}
	for k, v := range m {
		field := "metadata." + k
		if k == "" {
			return nil, invalid("metadata", "keys must be non-empty")
		}
		if n := utf8.RuneCountInString(k); n > MaxMetadataKeyLen {
			return nil, invalid(field, "key is %d characters long, at most %d allowed", n, MaxMetadataKeyLen)
		}
		if v == nil {
			if !allowNull {
				return nil, invalid(field, "must be a string")
			}
			continue
		}
		if n := utf8.RuneCountInString(*v); n > MaxMetadataValueLen {
			return nil, invalid(field, "value is %d characters long, at most %d allowed", n, MaxMetadataValueLen)
		}
	}
	return m, nil
}

// decodeBudget accepts an object and stores it as sent; it is not enforced.
func decodeBudget(raw json.RawMessage) (json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := decodeStrict("budget", raw, &obj); err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, invalid("budget", "must be an object")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, invalid("budget", "malformed JSON")
	}
	return buf.Bytes(), nil
}

func decodeSchedule(raw json.RawMessage) (*Schedule, error) {
	var obj struct {
		Type       *string `json:"type"`
		Expression *string `json:"expression"`
		Timezone   *string `json:"timezone"`
	}
	if err := decodeStrict("schedule", raw, &obj); err != nil {
		return nil, err
	}
	if obj.Type == nil {
		return nil, invalid("schedule.type", `is required: "cron"`)
	}
	if *obj.Type != "cron" {
		return nil, invalid("schedule.type", `must be "cron", got %q`, *obj.Type)
	}
	if obj.Expression == nil {
		return nil, invalid("schedule.expression", "is required")
	}
	if obj.Timezone == nil {
		return nil, invalid("schedule.timezone", "is required")
	}
	if _, err := schedule.Parse(*obj.Expression, *obj.Timezone); err != nil {
		return nil, scheduleError(err)
	}
	return &Schedule{Expression: *obj.Expression, Timezone: *obj.Timezone}, nil
}

func scheduleError(err error) error {
	if ve, ok := err.(*schedule.ValidationError); ok {
		return invalid(ve.Field, "%s", ve.Message)
	}
	return invalid("schedule", "%s", err.Error())
}

func decodeResources(raw json.RawMessage) ([]ResourceInput, error) {
	var items []json.RawMessage
	if err := decodeStrict("resources", raw, &items); err != nil {
		return nil, err
	}
	if len(items) > MaxResources {
		return nil, invalid("resources", "has %d entries, at most %d allowed", len(items), MaxResources)
	}
	out := make([]ResourceInput, 0, len(items))
	for i, item := range items {
		r, err := decodeResource(fieldAt("resources", i), item)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func decodeResource(field string, raw json.RawMessage) (ResourceInput, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return ResourceInput{}, invalid(field, "must be an object with a type")
	}
	switch head.Type {
	case ResourceGitHubRepository:
		var r struct {
			Type               string          `json:"type"`
			URL                *string         `json:"url"`
			Checkout           json.RawMessage `json:"checkout"`
			MountPath          *string         `json:"mount_path"`
			AuthorizationToken *string         `json:"authorization_token"`
		}
		if err := decodeStrict(field, raw, &r); err != nil {
			return ResourceInput{}, err
		}
		if r.URL == nil || *r.URL == "" {
			return ResourceInput{}, invalid(field+".url", "is required")
		}
		if err := checkRepoURL(field+".url", *r.URL); err != nil {
			return ResourceInput{}, err
		}
		if r.AuthorizationToken != nil && !strings.HasPrefix(strings.ToLower(*r.URL), "https://") {
			return ResourceInput{}, invalid(field+".url", "must use https when an authorization_token is given: the token would cross the network in the clear")
		}
		in := ResourceInput{Resource: Resource{Type: head.Type, URL: *r.URL}}
		if len(r.Checkout) > 0 && !isNull(r.Checkout) {
			co, err := decodeCheckout(field+".checkout", r.Checkout)
			if err != nil {
				return ResourceInput{}, err
			}
			in.Checkout = co
		}
		if err := checkMountPath(field+".mount_path", r.MountPath); err != nil {
			return ResourceInput{}, err
		}
		in.MountPath = r.MountPath
		if r.AuthorizationToken != nil {
			tok := *r.AuthorizationToken
			if tok == "" || len(tok) > MaxTokenLen {
				return ResourceInput{}, invalid(field+".authorization_token", "must be a non-empty string of at most %d bytes", MaxTokenLen)
			}
			in.Token = tok
		}
		return in, nil
	case ResourceFile:
		var r struct {
			Type      string  `json:"type"`
			FileID    *string `json:"file_id"`
			MountPath *string `json:"mount_path"`
		}
		if err := decodeStrict(field, raw, &r); err != nil {
			return ResourceInput{}, err
		}
		if r.FileID == nil {
			return ResourceInput{}, invalid(field+".file_id", "is required")
		}
		if err := checkID(field+".file_id", *r.FileID); err != nil {
			return ResourceInput{}, err
		}
		if err := checkMountPath(field+".mount_path", r.MountPath); err != nil {
			return ResourceInput{}, err
		}
		return ResourceInput{Resource: Resource{Type: head.Type, FileID: *r.FileID, MountPath: r.MountPath}}, nil
	case ResourceMemoryStore:
		var r struct {
			Type          string  `json:"type"`
			MemoryStoreID *string `json:"memory_store_id"`
			Access        *string `json:"access"`
			Instructions  *string `json:"instructions"`
		}
		if err := decodeStrict(field, raw, &r); err != nil {
			return ResourceInput{}, err
		}
		if r.MemoryStoreID == nil {
			return ResourceInput{}, invalid(field+".memory_store_id", "is required")
		}
		if err := checkID(field+".memory_store_id", *r.MemoryStoreID); err != nil {
			return ResourceInput{}, err
		}
		if r.Access != nil && *r.Access != "read_write" && *r.Access != "read_only" {
			return ResourceInput{}, invalid(field+".access", `must be "read_write" or "read_only", got %q`, *r.Access)
		}
		if r.Instructions != nil && utf8.RuneCountInString(*r.Instructions) > 4096 {
			return ResourceInput{}, invalid(field+".instructions", "at most 4096 characters allowed")
		}
		return ResourceInput{Resource: Resource{Type: head.Type, MemoryStoreID: *r.MemoryStoreID, Access: r.Access, Instructions: r.Instructions}}, nil
	case "":
		return ResourceInput{}, invalid(field+".type", "is required (github_repository, file or memory_store)")
	}
	return ResourceInput{}, invalid(field+".type", "unknown resource type %q: expected github_repository, file or memory_store", head.Type)
}

func checkRepoURL(field, s string) error {
	// The URL is not echoed: a mistaken paste may carry a token.
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return invalid(field, "must be an http(s) repository URL such as https://github.com/owner/repo")
	}
	if u.User != nil {
		return invalid(field, "must not carry credentials; use authorization_token")
	}
	return nil
}

func decodeCheckout(field string, raw json.RawMessage) (*sessions.Checkout, error) {
	var c struct {
		Type string  `json:"type"`
		Name *string `json:"name"`
		SHA  *string `json:"sha"`
	}
	if err := decodeStrict(field, raw, &c); err != nil {
		return nil, err
	}
	switch c.Type {
	case "branch":
		if c.SHA != nil {
			return nil, invalid(field+".sha", "not allowed for a branch checkout")
		}
		if c.Name == nil || *c.Name == "" || strings.ContainsAny(*c.Name, " \t\n~^:?*[\\") || strings.HasPrefix(*c.Name, "-") {
			return nil, invalid(field+".name", "must be a valid branch name")
		}
		return &sessions.Checkout{Type: "branch", Name: *c.Name}, nil
	case "commit":
		if c.Name != nil {
			return nil, invalid(field+".name", "not allowed for a commit checkout")
		}
		if c.SHA == nil || !isHexSHA(*c.SHA) {
			return nil, invalid(field+".sha", "must be a hexadecimal commit sha of 7 to 64 characters")
		}
		return &sessions.Checkout{Type: "commit", SHA: *c.SHA}, nil
	}
	return nil, invalid(field+".type", `must be "branch" or "commit", got %q`, c.Type)
}

func isHexSHA(s string) bool {
	if len(s) < 7 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}

func checkMountPath(field string, p *string) error {
	if p == nil {
		return nil
	}
	s := *p
	if s == "" || len(s) > MaxMountPathLen || strings.ContainsRune(s, 0) {
		return invalid(field, "must be a non-empty path of at most %d bytes", MaxMountPathLen)
	}
	for _, seg := range strings.Split(s, "/") {
		if seg == ".." {
			return invalid(field, "must not contain '..' segments")
		}
	}
	return nil
}
