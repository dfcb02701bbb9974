package local

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/sandbox0/sandbox0d/internal/strictjson"
	"github.com/sandbox0/sandbox0d/internal/wire"
)

// Request bodies of the agents, environments and vaults endpoints are read
// one object level at a time, so that every refusal names the field path
// (tools[0].configs[2].permission_policy.type) the way the official API
// does, and an unknown field is refused instead of silently dropped: what
// the local runtime would ignore must not look accepted.

// badField is a 400 naming the field it is about.
type badField struct {
	path string
	msg  string
}

func (e *badField) Error() string {
	if e.path == "" {
		return e.msg
	}
	return e.path + ": " + e.msg
}

func fieldErr(path, format string, args ...any) error {
	return &badField{path: path, msg: fmt.Sprintf(format, args...)}
}

// jsonObject is one decoded level of a request object.
type jsonObject struct {
	path   string
	fields map[string]json.RawMessage
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// readBody reads a request body (bounded, no duplicate keys) into its top
// object; known are the fields the endpoint takes.
func readBody(w http.ResponseWriter, r *http.Request, known ...string) (jsonObject, bool) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBodyBytes))
	if err != nil {
		wire.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", maxRequestBodyBytes))
		return jsonObject{}, false
	}
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	if err := strictjson.CheckDuplicateKeys(data); err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return jsonObject{}, false
	}
	obj, err := decodeObject(data, "", known...)
	if err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return jsonObject{}, false
	}
	return obj, true
}

// decodeObject decodes raw as an object whose fields are all in known.
func decodeObject(raw json.RawMessage, path string, known ...string) (jsonObject, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		where := path
		if where == "" {
			where = "the request body"
		}
		return jsonObject{}, &badField{msg: where + ": must be a JSON object"}
	}
	for k := range fields {
		if !slices.Contains(known, k) {
			return jsonObject{}, fieldErr(joinPath(path, k), "unknown field (the fields here are %s)", strings.Join(known, ", "))
		}
	}
	return jsonObject{path: path, fields: fields}, nil
}

func (o jsonObject) at(k string) string { return joinPath(o.path, k) }

// has reports a field present and not null.
func (o jsonObject) has(k string) bool {
	raw, ok := o.fields[k]
	return ok && !isNull(raw)
}

// present reports a field present, null or not (an update's "clear").
func (o jsonObject) present(k string) bool {
	_, ok := o.fields[k]
	return ok
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// str reads a string field; "" when absent or null.
func (o jsonObject) str(k string) (string, error) {
	if !o.has(k) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(o.fields[k], &s); err != nil {
		return "", fieldErr(o.at(k), "must be a string")
	}
	return s, nil
}

// text reads a string field and checks its length in characters.
func (o jsonObject) text(k string, required bool, minLen, maxLen int) (string, error) {
	s, err := o.str(k)
	if err != nil {
		return "", err
	}
	if required && !o.has(k) {
		return "", fieldErr(o.at(k), "is required")
	}
	if !o.has(k) {
		return "", nil
	}
	if n := utf8.RuneCountInString(s); n < minLen || n > maxLen {
		return "", fieldErr(o.at(k), "must be %d to %d characters, got %d", minLen, maxLen, n)
	}
	return s, nil
}

// boolean reads a boolean field; nil when absent or null.
func (o jsonObject) boolean(k string) (*bool, error) {
	if !o.has(k) {
		return nil, nil
	}
	var b bool
	if err := json.Unmarshal(o.fields[k], &b); err != nil {
		return nil, fieldErr(o.at(k), "must be true or false")
	}
	return &b, nil
}

// integer reads an integer field; nil when absent or null.
func (o jsonObject) integer(k string) (*int64, error) {
	if !o.has(k) {
		return nil, nil
	}
	var n int64
	if err := json.Unmarshal(o.fields[k], &n); err != nil {
		return nil, fieldErr(o.at(k), "must be an integer")
	}
	return &n, nil
}

// array reads an array field's items; nil when absent or null.
func (o jsonObject) array(k string) ([]json.RawMessage, error) {
	if !o.has(k) {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(o.fields[k], &items); err != nil {
		return nil, fieldErr(o.at(k), "must be an array")
	}
	return items, nil
}

// strs reads an array of strings.
func (o jsonObject) strs(k string) ([]string, error) {
	items, err := o.array(k)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(items))
	for i, raw := range items {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fieldErr(fmt.Sprintf("%s[%d]", o.at(k), i), "must be a string")
		}
		out = append(out, s)
	}
	return out, nil
}

// object decodes a nested object field.
func (o jsonObject) object(k string, known ...string) (jsonObject, error) {
	return decodeObject(o.fields[k], o.at(k), known...)
}

// Metadata bounds of the official API.
const (
	maxMetadataKeys     = 16
	maxMetadataKeyLen   = 64
	maxMetadataValueLen = 512
)

// metadata reads a metadata bag for a create (values must be strings).
func (o jsonObject) metadata(k string) (map[string]string, error) {
	patch, err := o.metadataPatch(k)
	if err != nil {
		return nil, err
	}
	return applyMetadata(nil, patch, o.at(k))
}

// metadataPatch reads an update's metadata: a null value deletes the key.
func (o jsonObject) metadataPatch(k string) (map[string]*string, error) {
	if !o.has(k) {
		return nil, nil
	}
	var patch map[string]*string
	if err := json.Unmarshal(o.fields[k], &patch); err != nil {
		return nil, fieldErr(o.at(k), "must be an object of string values")
	}
	for key, v := range patch {
		switch {
		case key == "" || utf8.RuneCountInString(key) > maxMetadataKeyLen:
			return nil, fieldErr(o.at(k), "key %q must be 1 to %d characters", key, maxMetadataKeyLen)
		case v != nil && utf8.RuneCountInString(*v) > maxMetadataValueLen:
			return nil, fieldErr(joinPath(o.at(k), key), "must be at most %d characters", maxMetadataValueLen)
		}
	}
	return patch, nil
}

// applyMetadata applies a patch (nil or "" deletes) and checks the size.
func applyMetadata(base map[string]string, patch map[string]*string, path string) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range patch {
		if v == nil || *v == "" {
			delete(out, k)
		} else {
			out[k] = *v
		}
	}
	if len(out) > maxMetadataKeys {
		return nil, fieldErr(path, "may hold at most %d keys, got %d", maxMetadataKeys, len(out))
	}
	return out, nil
}

// writeFieldError answers a decode or validation error: a *badField is a
// 400, anything else a 500 that says only what failed.
func (b *Backend) writeCatalogError(w http.ResponseWriter, what string, err error) {
	var bf *badField
	var ce *catalogError
	switch {
	case errors.As(err, &bf):
		wire.WriteError(w, http.StatusBadRequest, bf.Error())
	case errors.As(err, &ce):
		wire.WriteError(w, ce.status, ce.msg)
	case b.diskFull(w, err):
	default:
		b.log.Error(what, "error", err)
		wire.WriteError(w, http.StatusInternalServerError, what+" failed")
	}
}

// catalogError is an answer other than 400 (404, 409) with its message.
type catalogError struct {
	status int
	msg    string
}

func (e *catalogError) Error() string { return e.msg }

func notFound(format string, args ...any) error {
	return &catalogError{status: http.StatusNotFound, msg: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return &catalogError{status: http.StatusConflict, msg: fmt.Sprintf(format, args...)}
}
