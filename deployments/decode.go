package deployments

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Request decoding. Every error names the wire path of the offending field.
// Bodies are decoded in two steps: the top level into raw members (so absent,
// null and a value can be told apart), then each member strictly, refusing
// unknown fields so a typo is a 400 rather than silently ignored.

// DecodeCreate parses and validates a create-deployment body.
func DecodeCreate(body []byte) (CreateInput, error) {
	members, err := topLevel(body, createFields)
	if err != nil {
		return CreateInput{}, err
	}
	in, err := decodeCreate(members)
	if err != nil {
		return in, err
	}
	return in, checkStrings(members)
}

func decodeCreate(members map[string]json.RawMessage) (CreateInput, error) {
	var in CreateInput
	var err error
	for _, req := range []string{"name", "agent", "environment_id", "initial_events"} {
		if raw, ok := members[req]; !ok || isNull(raw) {
			return in, invalid(req, "is required")
		}
	}
	if in.Name, err = decodeName(members["name"]); err != nil {
		return in, err
	}
	if raw, ok := members["description"]; ok && !isNull(raw) {
		if in.Description, err = decodeDescription(raw); err != nil {
			return in, err
		}
	}
	if in.Agent, err = decodeAgent(members["agent"]); err != nil {
		return in, err
	}
	if in.EnvironmentID, err = decodeID("environment_id", members["environment_id"]); err != nil {
		return in, err
	}
	if in.InitialEvents, err = decodeInitialEvents(members["initial_events"]); err != nil {
		return in, err
	}
	if raw, ok := members["resources"]; ok && !isNull(raw) {
		if in.Resources, err = decodeResources(raw); err != nil {
			return in, err
		}
	}
	if raw, ok := members["vault_ids"]; ok && !isNull(raw) {
		if in.VaultIDs, err = decodeVaultIDs(raw); err != nil {
			return in, err
		}
	}
	if raw, ok := members["metadata"]; ok && !isNull(raw) {
		if in.Metadata, err = decodeMetadata(raw); err != nil {
			return in, err
		}
	}
	if raw, ok := members["budget"]; ok && !isNull(raw) {
		if in.Budget, err = decodeBudget(raw); err != nil {
			return in, err
		}
	}
	if raw, ok := members["schedule"]; ok && !isNull(raw) {
		if in.Schedule, err = decodeSchedule(raw); err != nil {
			return in, err
		}
	}
	return in, nil
}

// decodeMetadata reads a create body's metadata: a patch with no null
// values (nothing to delete yet), as a plain map.
func decodeMetadata(raw json.RawMessage) (map[string]string, error) {
	patch, err := decodeMetadataPatch(raw, false)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(patch))
	for k, v := range patch {
		m[k] = *v
	}
	return m, nil
}

// DecodeUpdate parses and validates an update body with absent/null/value
// semantics per field.
func DecodeUpdate(body []byte) (UpdateInput, error) {
	members, err := topLevel(body, createFields)
	if err != nil {
		return UpdateInput{}, err
	}
	in, err := decodeUpdate(members)
	if err != nil {
		return in, err
	}
	return in, checkStrings(members)
}

func decodeUpdate(members map[string]json.RawMessage) (UpdateInput, error) {
	var in UpdateInput
	var err error
	for _, f := range []string{"name", "agent", "environment_id", "initial_events"} {
		if raw, ok := members[f]; ok && isNull(raw) {
			return in, invalid(f, "cannot be null: it is required and can only be replaced")
		}
	}
	if raw, ok := members["name"]; ok {
		in.Name.Set = true
		if in.Name.Value, err = decodeName(raw); err != nil {
			return in, err
		}
	}
	if raw, ok := members["description"]; ok {
		in.Description.Set = true
		if isNull(raw) {
			// null clears: Value stays zero
		} else if in.Description.Value, err = decodeDescription(raw); err != nil {
			return in, err
		}
	}
	if raw, ok := members["agent"]; ok {
		in.Agent.Set = true
		if in.Agent.Value, err = decodeAgent(raw); err != nil {
			return in, err
		}
	}
	if raw, ok := members["environment_id"]; ok {
		in.EnvironmentID.Set = true
		if in.EnvironmentID.Value, err = decodeID("environment_id", raw); err != nil {
			return in, err
		}
	}
	if raw, ok := members["initial_events"]; ok {
		in.InitialEvents.Set = true
		if in.InitialEvents.Value, err = decodeInitialEvents(raw); err != nil {
			return in, err
		}
	}
	if raw, ok := members["resources"]; ok {
		in.Resources.Set = true
		if isNull(raw) {
			// null clears: Value stays zero
		} else if in.Resources.Value, err = decodeResources(raw); err != nil {
			return in, err
		}
	}
	if raw, ok := members["vault_ids"]; ok {
		in.VaultIDs.Set = true
		if isNull(raw) {
			// null clears: Value stays zero
		} else if in.VaultIDs.Value, err = decodeVaultIDs(raw); err != nil {
			return in, err
		}
	}
	if raw, ok := members["metadata"]; ok {
		if isNull(raw) {
			// The SDK types metadata as a patch "| null": null clears every key.
			in.MetadataClear = true
		} else if in.Metadata, err = decodeMetadataPatch(raw, true); err != nil {
			return in, err
		}
	}
	if raw, ok := members["budget"]; ok {
		in.Budget.Set = true
		if isNull(raw) {
			// null clears: Value stays zero
		} else if in.Budget.Value, err = decodeBudget(raw); err != nil {
			return in, err
		}
	}
	if raw, ok := members["schedule"]; ok {
		in.Schedule.Set = true
		if isNull(raw) {
			// null clears: Value stays zero
		} else if in.Schedule.Value, err = decodeSchedule(raw); err != nil {
			return in, err
		}
	}
	return in, nil
}

var createFields = []string{"name", "description", "agent", "environment_id", "initial_events",
	"resources", "vault_ids", "metadata", "budget", "schedule"}

// topLevel splits a JSON object body into its members, refusing anything but
// a single object with known member names.
func topLevel(body []byte, known []string) (map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, invalid("", "request body is empty: a JSON object is required")
	}
	if !utf8.Valid(body) {
		return nil, invalid("", "request body is not valid UTF-8")
	}
	var members map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&members); err != nil {
		return nil, jsonError("", err)
	}
	if members == nil {
		return nil, invalid("", "request body must be a JSON object, not null")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, invalid("", "request body has trailing data after the JSON object")
	}
	for name := range members {
		if !contains(known, name) {
			return nil, invalid(name, "unknown field")
		}
	}
	return members, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// decodeStrict decodes raw into v, refusing unknown fields, and reports
// errors against the given field path.
func decodeStrict(field string, raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(field, err)
	}
	return nil
}

// jsonError turns an encoding/json error into a field-path error.
func jsonError(field string, err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		path := joinPath(field, typeErr.Field)
		return invalid(path, "must be %s, got %s", describeType(typeErr.Type.String()), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return invalid(field, "malformed JSON at byte %d: %s", syntaxErr.Offset, syntaxErr.Error())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return invalid(joinPath(field, name), "unknown field")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return invalid(field, "malformed JSON: unexpected end of input")
	}
	return invalid(field, "malformed JSON: %s", err.Error())
}

func joinPath(base, rest string) string {
	switch {
	case base == "":
		return rest
	case rest == "":
		return base
	}
	return base + "." + rest
}

func describeType(goType string) string {
	switch {
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "an integer"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "bool":
		return "a boolean"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.HasPrefix(goType, "map["):
		return "an object"
	}
	return "an object"
}

func fieldAt(field string, i int) string { return fmt.Sprintf("%s[%d]", field, i) }
