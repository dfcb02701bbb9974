package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Fields that name an earlier event by its id, by the type of the event
// holding them; the backend maps a harness's own ids through them.
var refFields = map[string]string{
	"agent.tool_result":      "tool_use_id",
	"agent.mcp_tool_result":  "mcp_tool_use_id",
	"span.model_request_end": "model_request_start_id",
}

// ReferenceField is the member of an event of this type that names an
// earlier event's id ("" for types without one).
func ReferenceField(eventType string) string { return refFields[eventType] }

// Referable reports whether later events may name an event of this type
// by its id (tool uses and model request starts).
func Referable(eventType string) bool {
	switch eventType {
	case "agent.tool_use", "agent.mcp_tool_use", "agent.custom_tool_use", "span.model_request_start":
		return true
	}
	return false
}

// eventCheckers hold, for every event type a harness may emit, the checks
// of the official shape (anthropic-sdk-go v2 BetaManagedAgents*Event: the
// members it marks required, their JSON types and enums). Status changes,
// user input, threads, outcomes, workflows and session.usage are the
// daemon's (or not supported locally), so a harness may not emit them.
// id and processed_at are the daemon's business and not checked here.
var eventCheckers = map[string]func(o object) error{
	"agent.message": func(o object) error {
		return o.array("content", true, func(i int, b object) error { return b.messageBlock() })
	},
	"agent.thinking":                 func(object) error { return nil },
	"agent.thread_context_compacted": func(object) error { return nil },
	"agent.tool_use":                 func(o object) error { return o.toolUse(false) },
	"agent.mcp_tool_use":             func(o object) error { return o.toolUse(true) },
	"agent.custom_tool_use": func(o object) error {
		return first(o.str("name", true, nonEmpty), o.obj("input", true, nil), o.nullableStr("session_thread_id"))
	},
	"agent.tool_result":     func(o object) error { return o.toolResult("tool_use_id") },
	"agent.mcp_tool_result": func(o object) error { return o.toolResult("mcp_tool_use_id") },
	"span.model_request_start": func(object) error {
		return nil
	},
	"span.model_request_end": func(o object) error {
		return first(o.str("model_request_start_id", true, nonEmpty),
			// Required; the TS SDK's type allows null (boolean | null).
			o.boolean("is_error", true, true),
			o.obj("model_usage", true, func(u object) error {
				return first(u.count("input_tokens"), u.count("output_tokens"), u.count("cache_read_input_tokens"),
					u.count("cache_creation_input_tokens"), u.nullableEnum("speed", "standard", "fast"))
			}),
			o.obj(ListCostField, false, func(c object) error {
				return first(c.str("amount", true, func(s string) error {
					if _, ok := minorUnitsToMicros(s); !ok {
						return fmt.Errorf("must be a decimal string of cents with at most four decimals, like \"0.81\"")
					}
					return nil
				}), c.enum("currency", true, "USD"))
			}))
	},
	"session.error": func(o object) error {
		return o.obj("error", true, func(e object) error {
			t, err := e.enumValue("type", true, sessionErrorTypes...)
			if err != nil {
				return err
			}
			errs := []error{e.str("message", true, nil),
				e.obj("retry_status", true, func(r object) error { return r.enum("type", true, "retrying", "exhausted", "terminal") })}
			for _, f := range sessionErrorFields[t] {
				errs = append(errs, e.str(f, true, nonEmpty))
			}
			return first(errs...)
		})
	},
}

// sessionErrorTypes are the official session.error error types.
var sessionErrorTypes = []string{"unknown_error", "model_overloaded_error", "model_rate_limited_error",
	"model_request_failed_error", "mcp_connection_failed_error", "mcp_authentication_failed_error", "billing_error",
	"credential_host_unreachable_error", "tool_use_limit_reached_error", "compaction_limit_reached_error",
	"repository_authentication_error", "repository_forbidden_error", "repository_not_found_error",
	"repository_checkout_error", "repository_clone_error"}

// sessionErrorFields are the members some error types require besides
// type, message and retry_status.
var sessionErrorFields = map[string][]string{
	"mcp_connection_failed_error":       {"mcp_server_name"},
	"mcp_authentication_failed_error":   {"mcp_server_name"},
	"credential_host_unreachable_error": {"credential_id", "vault_id"},
	"repository_authentication_error":   {"repository_url"},
	"repository_forbidden_error":        {"repository_url"},
	"repository_not_found_error":        {"repository_url"},
	"repository_checkout_error":         {"repository_url"},
	"repository_clone_error":            {"repository_url"},
}

// ListCostField is the member of span.model_request_end through which a
// command harness reports a model call's list cost. No SDK defines it on
// the span, so the backend takes it off before storing the event; the cost
// is served in the session's usage.list_cost.
const ListCostField = "list_cost"

// MayEmit reports whether a harness may emit events of this type.
func MayEmit(eventType string) bool { return eventCheckers[eventType] != nil }

// CheckEvent checks a harness's event object against the official shape of
// its type. The error names the member and says what it must be.
func CheckEvent(obj map[string]json.RawMessage) (eventType string, err error) {
	o := object{path: "", m: obj}
	if err := json.Unmarshal(obj["type"], &eventType); err != nil || eventType == "" {
		return "", fmt.Errorf("type: must be a string naming an event type")
	}
	check := eventCheckers[eventType]
	if check == nil {
		return eventType, fmt.Errorf("type: %s is not an event a harness may emit (agent.*, span.model_request_*, session.error)", eventType)
	}
	if err := o.str("id", false, nonEmpty); err != nil {
		return eventType, err
	}
	if err := check(o); err != nil {
		return eventType, fmt.Errorf("%s: %w", eventType, err)
	}
	return eventType, nil
}

// object is a JSON object being checked, with its path for messages.
type object struct {
	path string
	m    map[string]json.RawMessage
}

func (o object) at(key string) string {
	if o.path == "" {
		return key
	}
	return o.path + "." + key
}

// get returns a member, treating a JSON null as absent.
func (o object) get(key string) (json.RawMessage, bool) {
	v, ok := o.m[key]
	if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return nil, false
	}
	return v, true
}

func missing(path string) error { return fmt.Errorf("%s is required", path) }

func (o object) str(key string, required bool, check func(string) error) error {
	v, ok := o.get(key)
	if !ok {
		if required {
			return missing(o.at(key))
		}
		return nil
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return fmt.Errorf("%s must be a string", o.at(key))
	}
	if check != nil {
		if err := check(s); err != nil {
			return fmt.Errorf("%s %w", o.at(key), err)
		}
	}
	return nil
}

func (o object) nullableStr(key string) error { return o.str(key, false, nil) }

func nonEmpty(s string) error {
	if s == "" {
		return fmt.Errorf("must not be empty")
	}
	return nil
}

func (o object) enumValue(key string, required bool, values ...string) (string, error) {
	var got string
	err := o.str(key, required, func(s string) error {
		for _, v := range values {
			if s == v {
				got = s
				return nil
			}
		}
		return fmt.Errorf("is %q; it must be one of %v", s, values)
	})
	return got, err
}

func (o object) enum(key string, required bool, values ...string) error {
	_, err := o.enumValue(key, required, values...)
	return err
}

func (o object) nullableEnum(key string, values ...string) error {
	return o.enum(key, false, values...)
}

func (o object) boolean(key string, required, nullable bool) error {
	v, ok := o.m[key]
	if !ok {
		if required {
			return missing(o.at(key))
		}
		return nil
	}
	var b *bool
	if json.Unmarshal(v, &b) != nil || b == nil && !nullable {
		return fmt.Errorf("%s must be true or false", o.at(key))
	}
	return nil
}

// count is a required non-negative integer.
func (o object) count(key string) error {
	v, ok := o.get(key)
	if !ok {
		return missing(o.at(key))
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("%s must be a non-negative integer", o.at(key))
	}
	return nil
}

func (o object) obj(key string, required bool, check func(object) error) error {
	v, ok := o.get(key)
	if !ok {
		if required {
			return missing(o.at(key))
		}
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(v, &m) != nil || m == nil {
		return fmt.Errorf("%s must be an object", o.at(key))
	}
	if check == nil {
		return nil
	}
	return check(object{path: o.at(key), m: m})
}

// array checks an array of objects member by member.
func (o object) array(key string, required bool, check func(int, object) error) error {
	v, ok := o.get(key)
	if !ok {
		if required {
			return missing(o.at(key))
		}
		return nil
	}
	var items []json.RawMessage
	if json.Unmarshal(v, &items) != nil {
		return fmt.Errorf("%s must be an array", o.at(key))
	}
	for i, item := range items {
		path := fmt.Sprintf("%s[%d]", o.at(key), i)
		var m map[string]json.RawMessage
		if json.Unmarshal(item, &m) != nil || m == nil {
			return fmt.Errorf("%s must be an object", path)
		}
		if err := check(i, object{path: path, m: m}); err != nil {
			return err
		}
	}
	return nil
}

func (o object) toolUse(mcp bool) error {
	errs := []error{o.str("name", true, nonEmpty), o.obj("input", true, nil),
		o.nullableEnum("evaluated_permission", "allow", "ask", "deny"),
		o.obj("evaluation", false, func(e object) error { return e.enum("type", true, "always_allow", "always_ask", "auto") }),
		o.nullableStr("session_thread_id")}
	if mcp {
		errs = append(errs, o.str("mcp_server_name", true, nonEmpty))
	}
	return first(errs...)
}

func (o object) toolResult(ref string) error {
	return first(o.str(ref, true, nonEmpty), o.boolean("is_error", false, true),
		o.array("content", false, func(_ int, b object) error { return b.resultBlock() }))
}

// messageBlock is an agent.message content block: text or redacted.
func (o object) messageBlock() error {
	t, err := o.enumValue("type", true, "text", "redacted")
	if err != nil || t != "text" {
		return err
	}
	return o.str("text", true, nil)
}

// resultBlock is a tool result content block: text, image, document or
// search_result.
func (o object) resultBlock() error {
	t, err := o.enumValue("type", true, "text", "image", "document", "search_result")
	if err != nil {
		return err
	}
	switch t {
	case "text":
		return o.str("text", true, nil)
	case "image":
		return o.obj("source", true, func(s object) error { return s.enum("type", true, "base64", "url", "file") })
	case "document":
		return first(o.obj("source", true, func(s object) error { return s.enum("type", true, "base64", "text", "url", "file") }),
			o.nullableStr("context"), o.nullableStr("title"))
	default: // search_result
		return first(o.str("source", true, nil), o.str("title", true, nil),
			o.obj("citations", true, func(c object) error { return c.boolean("enabled", true, false) }),
			o.array("content", true, func(_ int, b object) error {
				return first(b.enum("type", true, "text"), b.str("text", true, nil))
			}))
	}
}

// first is the first non-nil error.
func first(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
