package daemon

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// KeyRef is one row of the configuration reference.
type KeyRef struct {
	Key, Type, Default, Env, Flag, Meaning string
}

// configField is a key of Config with its Go type; list parents
// (local.agents) come before their items' keys (local.agents[].id).
type configField struct {
	key  string
	typ  reflect.Type
	list bool // a list of sections
}

var durationType = reflect.TypeOf(time.Duration(0))

func configFields(t reflect.Type, path string) []configField {
	var out []configField
	for i := range t.NumField() {
		f := t.Field(i)
		name := tagName(f)
		if name == "" {
			continue
		}
		key, ft := join(path, name), f.Type
		switch {
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, configField{key: key, typ: ft, list: true})
			out = append(out, configFields(ft.Elem(), key+"[]")...)
		case ft.Kind() == reflect.Struct && ft.PkgPath() != "time":
			out = append(out, configFields(ft, key)...)
		default:
			out = append(out, configField{key: key, typ: ft})
		}
	}
	return out
}

// MissingMeanings lists the keys of Config that keyDocs does not explain,
// and (marked "no such key") keyDocs entries for keys Config no longer has,
// so the table cannot drift either way.
func MissingMeanings() []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range configFields(reflect.TypeOf(Config{}), "") {
		seen[f.key] = true
		if keyDocs[f.key].Meaning == "" {
			out = append(out, f.key)
		}
	}
	var stale []string
	for k := range keyDocs {
		if !seen[k] {
			stale = append(stale, k+" (no such key)")
		}
	}
	sort.Strings(stale)
	return append(out, stale...)
}

// ConfigReference is every key of Config, in struct order, with its type,
// default, environment variable, flag and meaning. Defaults that depend on
// the host are given as keyDocs describes them, so the page is the same
// wherever it is generated.
func ConfigReference() ([]KeyRef, error) {
	if missing := MissingMeanings(); len(missing) > 0 {
		return nil, fmt.Errorf("config keys without a meaning in daemon/config_doc.go keyDocs: %s", strings.Join(missing, ", "))
	}
	v := viper.New()
	setDefaults(v)
	flags := map[string]string{}
	for flag, key := range serveFlagKeys {
		flags[key] = "--" + flag
	}
	var out []KeyRef
	for _, f := range configFields(reflect.TypeOf(Config{}), "") {
		doc := keyDocs[f.key]
		ref := KeyRef{Key: f.key, Type: typeName(f.typ), Meaning: doc.Meaning, Flag: flags[f.key], Default: doc.Default}
		if !strings.Contains(f.key, "[]") && !f.list {
			ref.Env = EnvName(f.key)
			if f.key == "auth.api_keys" {
				ref.Env = "SANDBOX0D_API_KEYS, " + ref.Env
			}
		}
		if ref.Default == "" {
			def := v.Get(f.key)
			if def == nil && !f.list && f.typ.Kind() != reflect.Map && f.typ.Kind() != reflect.Slice {
				// A list item's key has no registered default: it is the zero value.
				def = reflect.Zero(f.typ).Interface()
			}
			ref.Default = describeDefault(def)
		}
		out = append(out, ref)
	}
	return out, nil
}

// EnvName is the SANDBOX0D_ variable that sets key.
func EnvName(key string) string {
	return "SANDBOX0D_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		return "list of sections"
	case t.Kind() == reflect.Slice:
		return "list of " + typeName(t.Elem()) + "s"
	case t.Kind() == reflect.Map:
		return "map of strings"
	case t.Kind() == reflect.String:
		return "string"
	case t.Kind() == reflect.Bool:
		return "bool"
	case t.Kind() == reflect.Float64:
		return "number"
	default:
		return "integer"
	}
}

// describeDefault renders a registered default for the page; nil is a key
// with no registered default (inside a list item: the zero value).
func describeDefault(v any) string {
	switch x := v.(type) {
	case nil:
		return "none"
	case string:
		if x == "" {
			return "empty"
		}
	case []any:
		if len(x) == 0 {
			return "none"
		}
	case []string:
		if len(x) == 0 {
			return "none"
		}
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.String && rv.Len() == 0 {
		return "empty" // a named string type (a webhook Secret) too
	}
	return "`" + yamlValue(v) + "`"
}

// yamlValue is v as a flow-style YAML value (durations as 1m, 168h).
func yamlValue(v any) string {
	rv := reflect.ValueOf(v)
	switch {
	case v == nil:
		return `""`
	case rv.Type() == durationType:
		return shortDuration(time.Duration(rv.Int()))
	case rv.Kind() == reflect.Slice:
		items := make([]string, rv.Len())
		for i := range items {
			items[i] = yamlValue(rv.Index(i).Interface())
		}
		return "[" + strings.Join(items, ", ") + "]"
	}
	out, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(string(out), "\n")
}

// shortDuration drops the zero units time.Duration.String adds (1m0s → 1m).
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// ConfigMarkdown renders docs/configuration.md.
func ConfigMarkdown() (string, error) {
	refs, err := ConfigReference()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("<!-- Generated by `go generate ./...` from daemon/config.go and daemon/config_doc.go; do not edit. -->\n\n")
	b.WriteString("# Configuration reference\n\n")
	b.WriteString(configIntro)
	b.WriteString("| key | type | default | env | flag | meaning |\n|---|---|---|---|---|---|\n")
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	code := func(s string) string {
		if s == "" {
			return ""
		}
		parts := strings.Split(s, ", ")
		for i, p := range parts {
			parts[i] = "`" + p + "`"
		}
		return strings.Join(parts, ", ")
	}
	for _, r := range refs {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", r.Key, r.Type, cell(r.Default), code(r.Env), code(r.Flag), cell(r.Meaning))
	}
	b.WriteString(configOutro)
	return b.String(), nil
}
