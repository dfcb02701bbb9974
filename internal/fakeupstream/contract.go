package fakeupstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
)

// checkHeaders applies the rules every request must follow; it returns the
// status and problem of the first broken one, or "" when all hold.
func (s *Server) checkHeaders(r *http.Request) (int, string) {
	if r.Header.Get("Authorization") != "" {
		return http.StatusBadRequest, "an Authorization header was sent: the daemon must authenticate with its own x-api-key only (did a client's credential leak through?)"
	}
	switch key := r.Header.Get("X-Api-Key"); {
	case key == "":
		return http.StatusUnauthorized, "missing x-api-key header"
	case key != s.opts.apiKey:
		return http.StatusUnauthorized, "x-api-key does not match the key this upstream was configured with"
	}
	if beta := betaFor(r.URL.Path); beta != "" && !hasBeta(r.Header, beta) {
		return http.StatusBadRequest, fmt.Sprintf("anthropic-beta must contain %q (got %q)", beta, strings.Join(r.Header.Values("anthropic-beta"), ","))
	}
	if r.Header.Get("anthropic-version") == "" {
		return http.StatusBadRequest, "missing anthropic-version header"
	}
	if got := r.URL.Query().Get("beta"); got != "true" {
		return http.StatusBadRequest, fmt.Sprintf("query parameter beta=true is required (got %q)", got)
	}
	if r.Method == http.MethodPost && r.URL.Path == "/v1/files" {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "multipart/form-data" {
			return http.StatusBadRequest, fmt.Sprintf("a file upload must be multipart/form-data (got %q)", r.Header.Get("Content-Type"))
		}
	} else if r.Method == http.MethodPost {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			return http.StatusBadRequest, fmt.Sprintf("Content-Type must be application/json (got %q)", r.Header.Get("Content-Type"))
		}
	}
	return 0, ""
}

// betaFor is the beta each API of the real server demands ("" for none:
// the Models API is not a beta).
func betaFor(path string) string {
	switch {
	case path == "/v1/models" || strings.HasPrefix(path, "/v1/models/"):
		return ""
	case path == "/v1/files" || strings.HasPrefix(path, "/v1/files/"):
		return FilesBeta
	case path == "/v1/memory_stores" || strings.HasPrefix(path, "/v1/memory_stores/"):
		return MemoryStoresBeta
	}
	return ManagedAgentsBeta
}

func hasBeta(h http.Header, want string) bool {
	for _, line := range h.Values("anthropic-beta") {
		for v := range strings.SplitSeq(line, ",") {
			if strings.TrimSpace(v) == want {
				return true
			}
		}
	}
	return false
}

// fields is a decoded JSON object whose problems name their path.
type fields struct {
	where string
	m     map[string]json.RawMessage
}

// decodeObject decodes raw as an object that may only have the allowed keys.
func decodeObject(raw []byte, where string, allowed ...string) (fields, error) {
	f := fields{where: where}
	if len(bytes.TrimSpace(raw)) == 0 || bytes.TrimSpace(raw)[0] != '{' {
		return f, fmt.Errorf("%s must be a JSON object", where)
	}
	if err := json.Unmarshal(raw, &f.m); err != nil {
		return f, fmt.Errorf("%s is not valid JSON: %v", where, err)
	}
	for k := range f.m {
		if !slices.Contains(allowed, k) {
			return f, fmt.Errorf("%s has unknown field %q", where, k)
		}
	}
	return f, nil
}

func (f fields) has(key string) bool {
	raw, ok := f.m[key]
	return ok && string(bytes.TrimSpace(raw)) != "null"
}

func (f fields) path(key string) string { return f.where + "." + key }

// str reads a string field; required fields must be present and non-empty.
func (f fields) str(key string, required bool) (string, error) {
	if !f.has(key) {
		if required {
			return "", fmt.Errorf("%s is required", f.path(key))
		}
		return "", nil
	}
	var v string
	if err := json.Unmarshal(f.m[key], &v); err != nil {
		return "", fmt.Errorf("%s must be a string", f.path(key))
	}
	if required && v == "" {
		return "", fmt.Errorf("%s must not be empty", f.path(key))
	}
	return v, nil
}

// array reads an array field as its raw elements.
func (f fields) array(key string) ([]json.RawMessage, error) {
	if !f.has(key) {
		return nil, nil
	}
	var v []json.RawMessage
	if err := json.Unmarshal(f.m[key], &v); err != nil {
		return nil, fmt.Errorf("%s must be an array", f.path(key))
	}
	return v, nil
}

// parsedSession is a valid POST /v1/sessions body.
type parsedSession struct {
	agentID       string
	agentVersion  int64
	environmentID string
	title         string
	resources     []Resource
	vaultIDs      []string
	metadata      map[string]string
	budget        json.RawMessage
	initialEvents []json.RawMessage
}

// parseCreateSession checks a POST /v1/sessions body against the official
// request shape and the sandbox0d rules (a pinned agent version, the run's
// metadata keys).
func parseCreateSession(body []byte, requiredMetadata []string) (parsedSession, error) {
	var p parsedSession
	top, err := decodeObject(body, "body", "agent", "environment_id", "title", "resources", "vault_ids", "metadata", "initial_events", "budget")
	if err != nil {
		return p, err
	}
	if !top.has("agent") {
		return p, fmt.Errorf("body.agent is required")
	}
	if p.agentID, p.agentVersion, err = parseAgentRef(top.m["agent"]); err != nil {
		return p, err
	}
	if p.environmentID, err = top.str("environment_id", true); err != nil {
		return p, err
	}
	if p.title, err = top.str("title", false); err != nil {
		return p, err
	}
	rawResources, err := top.array("resources")
	if err != nil {
		return p, err
	}
	for i, raw := range rawResources {
		res, err := parseResource(raw, fmt.Sprintf("body.resources[%d]", i))
		if err != nil {
			return p, err
		}
		p.resources = append(p.resources, res)
	}
	rawVaults, err := top.array("vault_ids")
	if err != nil {
		return p, err
	}
	for i, raw := range rawVaults {
		var id string
		if json.Unmarshal(raw, &id) != nil || id == "" {
			return p, fmt.Errorf("body.vault_ids[%d] must be a non-empty string", i)
		}
		p.vaultIDs = append(p.vaultIDs, id)
	}
	if p.metadata, err = parseMetadata(top, requiredMetadata); err != nil {
		return p, err
	}
	if top.has("budget") {
		if p.budget, err = parseBudget(top.m["budget"]); err != nil {
			return p, err
		}
	}
	if p.initialEvents, err = top.array("initial_events"); err != nil {
		return p, err
	}
	for i, raw := range p.initialEvents {
		if _, err := parseEvent(raw, fmt.Sprintf("body.initial_events[%d]", i)); err != nil {
			return p, err
		}
	}
	return p, nil
}

func parseAgentRef(raw json.RawMessage) (string, int64, error) {
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte(`"`)) {
		return "", 0, fmt.Errorf("body.agent must be an object {type, id, version}: a bare id would pin whatever version is latest when the session starts")
	}
	obj, err := decodeObject(raw, "body.agent", "type", "id", "version")
	if err != nil {
		return "", 0, err
	}
	typ, err := obj.str("type", true)
	if err != nil {
		return "", 0, err
	}
	if typ != "agent" {
		return "", 0, fmt.Errorf("body.agent.type must be \"agent\" (got %q)", typ)
	}
	id, err := obj.str("id", true)
	if err != nil {
		return "", 0, err
	}
	var version int64
	if !obj.has("version") || json.Unmarshal(obj.m["version"], &version) != nil || version < 1 {
		return "", 0, fmt.Errorf("body.agent.version must be an integer >= 1")
	}
	return id, version, nil
}

func parseMetadata(top fields, required []string) (map[string]string, error) {
	md := map[string]string{}
	if top.has("metadata") {
		if err := json.Unmarshal(top.m["metadata"], &md); err != nil {
			return nil, fmt.Errorf("body.metadata must be an object of string values")
		}
	}
	if len(md) > MaxMetadataPairs {
		return nil, fmt.Errorf("body.metadata has %d pairs; at most %d are allowed", len(md), MaxMetadataPairs)
	}
	for k, v := range md {
		if len(k) > 64 {
			return nil, fmt.Errorf("body.metadata key %q is longer than 64 characters", k)
		}
		if len(v) > 512 {
			return nil, fmt.Errorf("body.metadata[%q] is longer than 512 characters", k)
		}
	}
	for _, k := range required {
		if md[k] == "" {
			return nil, fmt.Errorf("body.metadata must name the deployment run: key %q is missing", k)
		}
	}
	return md, nil
}

// Checkout is a repository checkout as received.
type Checkout struct {
	Type string `json:"type"`
	Name string `json:"name,omitempty"`
	SHA  string `json:"sha,omitempty"`
}

// Resource is a session resource exactly as the client sent it, secrets
// included, so tests can assert what reached the upstream. The fake never
// returns AuthorizationToken in a response.
type Resource struct {
	Type               string
	URL                string
	Checkout           *Checkout
	MountPath          string
	AuthorizationToken string
	FileID             string
	MemoryStoreID      string
	Access             string
	Instructions       string
}

func parseResource(raw json.RawMessage, where string) (Resource, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return Resource{}, fmt.Errorf("%s must be an object with a type", where)
	}
	r := Resource{Type: head.Type}
	switch head.Type {
	case "github_repository":
		obj, err := decodeObject(raw, where, "type", "url", "checkout", "mount_path", "authorization_token")
		if err != nil {
			return r, err
		}
		if r.URL, err = obj.str("url", true); err != nil {
			return r, err
		}
		if r.MountPath, err = obj.str("mount_path", false); err != nil {
			return r, err
		}
		if r.AuthorizationToken, err = obj.str("authorization_token", false); err != nil {
			return r, err
		}
		if obj.has("checkout") {
			if r.Checkout, err = parseCheckout(obj.m["checkout"], obj.path("checkout")); err != nil {
				return r, err
			}
		}
		return r, nil
	case "file":
		obj, err := decodeObject(raw, where, "type", "file_id", "mount_path")
		if err != nil {
			return r, err
		}
		if r.FileID, err = obj.str("file_id", true); err != nil {
			return r, err
		}
		r.MountPath, err = obj.str("mount_path", false)
		return r, err
	case "memory_store":
		obj, err := decodeObject(raw, where, "type", "memory_store_id", "access", "instructions")
		if err != nil {
			return r, err
		}
		if r.MemoryStoreID, err = obj.str("memory_store_id", true); err != nil {
			return r, err
		}
		if r.Access, err = obj.str("access", false); err != nil {
			return r, err
		}
		if r.Access != "" && r.Access != "read_write" && r.Access != "read_only" {
			return r, fmt.Errorf("%s.access must be read_write or read_only (got %q)", where, r.Access)
		}
		r.Instructions, err = obj.str("instructions", false)
		return r, err
	default:
		return r, fmt.Errorf("%s.type must be github_repository, file or memory_store (got %q)", where, head.Type)
	}
}

func parseCheckout(raw json.RawMessage, where string) (*Checkout, error) {
	obj, err := decodeObject(raw, where, "type", "name", "sha")
	if err != nil {
		return nil, err
	}
	c := &Checkout{}
	if c.Type, err = obj.str("type", true); err != nil {
		return nil, err
	}
	switch c.Type {
	case "branch":
		if obj.has("sha") {
			return nil, fmt.Errorf("%s: a branch checkout has no sha", where)
		}
		c.Name, err = obj.str("name", true)
	case "commit":
		if obj.has("name") {
			return nil, fmt.Errorf("%s: a commit checkout has no name", where)
		}
		c.SHA, err = obj.str("sha", true)
	default:
		err = fmt.Errorf("%s.type must be branch or commit (got %q)", where, c.Type)
	}
	return c, err
}

// sendableEvents are the event types a client may post.
var sendableEvents = []string{
	"user.message", "user.interrupt", "user.tool_confirmation", "user.custom_tool_result",
	"user.tool_result", "user.define_outcome", "system.message",
}

// parseEvent checks one client-sent event and returns its type.
func parseEvent(raw json.RawMessage, where string) (string, error) {
	var head map[string]json.RawMessage
	if err := json.Unmarshal(raw, &head); err != nil || head == nil {
		return "", fmt.Errorf("%s must be a JSON object", where)
	}
	var typ string
	if err := json.Unmarshal(head["type"], &typ); err != nil || typ == "" {
		return "", fmt.Errorf("%s.type is required", where)
	}
	if !slices.Contains(sendableEvents, typ) {
		return "", fmt.Errorf("%s.type %q cannot be sent by a client", where, typ)
	}
	if typ != "user.message" && typ != "system.message" {
		return typ, nil
	}
	obj, err := decodeObject(raw, where, "type", "content")
	if err != nil {
		return "", err
	}
	blocks, err := obj.array("content")
	if err != nil {
		return "", err
	}
	if len(blocks) == 0 {
		return "", fmt.Errorf("%s.content must be a non-empty array of content blocks", where)
	}
	for i, b := range blocks {
		if err := checkBlock(b, fmt.Sprintf("%s.content[%d]", where, i), typ == "system.message"); err != nil {
			return "", err
		}
	}
	return typ, nil
}

func checkBlock(raw json.RawMessage, where string, textOnly bool) error {
	var block map[string]json.RawMessage
	if err := json.Unmarshal(raw, &block); err != nil || block == nil {
		return fmt.Errorf("%s must be a JSON object", where)
	}
	var typ string
	_ = json.Unmarshal(block["type"], &typ)
	switch {
	case typ == "text":
		var text string
		if json.Unmarshal(block["text"], &text) != nil {
			return fmt.Errorf("%s.text must be a string", where)
		}
	case textOnly:
		return fmt.Errorf("%s.type must be text in a system.message (got %q)", where, typ)
	case typ == "image" || typ == "document":
		if _, ok := block["source"]; !ok {
			return fmt.Errorf("%s.source is required", where)
		}
	default:
		return fmt.Errorf("%s.type must be text, image or document (got %q)", where, typ)
	}
	return nil
}

// parseSendEvents checks a POST /v1/sessions/{id}/events body.
func parseSendEvents(body []byte) ([]json.RawMessage, error) {
	top, err := decodeObject(body, "body", "events")
	if err != nil {
		return nil, err
	}
	events, err := top.array("events")
	if err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("body.events must be a non-empty array")
	}
	for i, raw := range events {
		if _, err := parseEvent(raw, fmt.Sprintf("body.events[%d]", i)); err != nil {
			return nil, err
		}
	}
	return events, nil
}

// parseBudget checks a session budget: {"type":"limit","max_list_cost":
// {"amount":"<minor units>","currency":"USD"}} (BetaManagedAgentsBudgetLimitParam).
func parseBudget(raw json.RawMessage) (json.RawMessage, error) {
	top, err := decodeObject(raw, "body.budget", "type", "max_list_cost")
	if err != nil {
		return nil, err
	}
	if typ, err := top.str("type", true); err != nil {
		return nil, err
	} else if typ != "limit" {
		return nil, fmt.Errorf("body.budget.type must be \"limit\" (got %q)", typ)
	}
	if !top.has("max_list_cost") {
		return nil, fmt.Errorf("body.budget.max_list_cost is required")
	}
	cost, err := decodeObject(top.m["max_list_cost"], "body.budget.max_list_cost", "amount", "currency")
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"amount", "currency"} {
		if _, err := cost.str(k, true); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("body.budget is not valid JSON: %v", err)
	}
	return buf.Bytes(), nil
}
