package daemon

import (
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Strict configuration. viper accepts any key and lower-cases every map key
// it reads; both hurt: a typo (shedule.workers) silently keeps the default,
// and an agent's env {MY_KEY: v} reached the harness as my_key=v. So the
// file is also read here, as YAML nodes, and walked against Config's
// mapstructure tags: an unknown key is a *ConfigError naming the key and the
// file with the closest known key, and every map that holds user-chosen keys
// (env names, header names) gets its keys' case back after viper's Unmarshal.

// silentEnv are SANDBOX0D_ variables that are not config keys but live in the
// same shells: the CLI's own, and the config file path.
var silentEnv = map[string]bool{
	"SANDBOX0D_ADDR": true, "SANDBOX0D_API_KEY": true, "SANDBOX0D_SOCKET": true, "SANDBOX0D_CONFIG": true,
	"SANDBOX0D_API_KEYS": true, // the documented short form of auth.api_keys
}

// readConfigNode parses the config file as YAML nodes; nil when path is "".
func readConfigNode(path string) (*yaml.Node, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// checkKnownKeys returns a *ConfigError for the first key of the file (in
// file order) that Config does not have.
func checkKnownKeys(root *yaml.Node, file string) error {
	if root == nil {
		return nil
	}
	known := knownKeys(reflect.TypeOf(Config{}), "")
	if key := firstUnknown(root, reflect.TypeOf(Config{}), ""); key != "" {
		problem := "unknown key"
		if near := closest(key, known); near != "" {
			problem += "; did you mean " + near + "?"
		}
		return &ConfigError{File: file, Key: key, Problem: problem}
	}
	return nil
}

// fieldByKey finds the struct field whose mapstructure name is key, case
// insensitively as viper matches them.
func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if name := tagName(f); name != "" && strings.EqualFold(name, key) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func tagName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	return name
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// firstUnknown walks node against t and returns the path of the first key
// t does not declare ("" if none). An unknown section is reported at its
// first leaf, so the suggestion can name the full key.
func firstUnknown(node *yaml.Node, t reflect.Type, path string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Struct && node.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(node.Content); i += 2 {
			key, value := node.Content[i].Value, node.Content[i+1]
			f, ok := fieldByKey(t, key)
			if !ok {
				return firstLeaf(value, join(path, key))
			}
			if bad := firstUnknown(value, f.Type, join(path, tagName(f))); bad != "" {
				return bad
			}
		}
	case t.Kind() == reflect.Slice && node.Kind == yaml.SequenceNode:
		for i, item := range node.Content {
			if bad := firstUnknown(item, t.Elem(), path+"["+strconv.Itoa(i)+"]"); bad != "" {
				return bad
			}
		}
	}
	// Maps hold user-chosen keys; scalars and mismatched shapes are
	// viper's to decode (and to refuse with its own error).
	return ""
}

func firstLeaf(node *yaml.Node, path string) string {
	if node.Kind == yaml.MappingNode && len(node.Content) >= 2 {
		return firstLeaf(node.Content[1], join(path, node.Content[0].Value))
	}
	return path
}

// knownKeys lists every leaf key of t (lists as name[]), for suggestions
// and for matching SANDBOX0D_ variables.
func knownKeys(t reflect.Type, path string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t.PkgPath() == "time" {
		return []string{path}
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name := tagName(f)
		if name == "" {
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			out = append(out, knownKeys(ft.Elem(), join(path, name)+"[]")...)
			continue
		}
		out = append(out, knownKeys(ft, join(path, name))...)
	}
	return out
}

// closest returns the known key nearest to key by edit distance (list
// indexes ignored), or "" when nothing is near enough to be a typo.
func closest(key string, known []string) string {
	bare := stripIndexes(key)
	best, bestD := "", len(bare)/3+2
	for _, k := range known {
		if d := editDistance(bare, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return restoreIndexes(best, key)
}

// stripIndexes turns local.agents[0].comand into local.agents[].comand.
func stripIndexes(key string) string {
	var b strings.Builder
	skip := false
	for _, r := range key {
		switch {
		case r == '[':
			skip = true
			b.WriteRune(r)
		case r == ']':
			skip = false
			b.WriteRune(r)
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// restoreIndexes puts the indexes of key back into the suggestion's [].
func restoreIndexes(suggestion, key string) string {
	var idx []string
	for rest := key; ; {
		i := strings.IndexByte(rest, '[')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], ']')
		if j < 0 {
			break
		}
		idx = append(idx, rest[i:i+j+1])
		rest = rest[i+j+1:]
	}
	for _, ix := range idx {
		if !strings.Contains(suggestion, "[]") {
			break
		}
		suggestion = strings.Replace(suggestion, "[]", ix, 1)
	}
	return suggestion
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// unknownEnv returns the SANDBOX0D_ variables of environ that match no
// config key (sorted), for a startup warning.
func unknownEnv(environ []string) []string {
	known := map[string]bool{}
	for _, k := range knownKeys(reflect.TypeOf(Config{}), "") {
		if !strings.Contains(k, "[]") {
			known["SANDBOX0D_"+strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(k))] = true
		}
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "SANDBOX0D_") && !known[name] && !silentEnv[name] {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// restoreMapKeys gives every map[string]… in v that the file set its keys'
// original case back (viper lower-cased them). Values a map got from
// elsewhere keep what they have.
func restoreMapKeys(node *yaml.Node, v reflect.Value) {
	if node == nil {
		return
	}
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	switch {
	case v.Kind() == reflect.Struct && node.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(node.Content); i += 2 {
			if f, ok := fieldByKey(v.Type(), node.Content[i].Value); ok {
				restoreMapKeys(node.Content[i+1], v.FieldByIndex(f.Index))
			}
		}
	case v.Kind() == reflect.Slice && node.Kind == yaml.SequenceNode && v.Len() == len(node.Content):
		for i, item := range node.Content {
			restoreMapKeys(item, v.Index(i))
		}
	case v.Kind() == reflect.Map && v.Type().Key().Kind() == reflect.String && node.Kind == yaml.MappingNode && !v.IsNil():
		original := map[string]string{}
		for i := 0; i+1 < len(node.Content); i += 2 {
			original[strings.ToLower(node.Content[i].Value)] = node.Content[i].Value
		}
		fixed := reflect.MakeMapWithSize(v.Type(), v.Len())
		iter := v.MapRange()
		for iter.Next() {
			k := iter.Key().String()
			if orig, ok := original[k]; ok {
				k = orig
			}
			fixed.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), iter.Value())
		}
		v.Set(fixed)
	}
}

// describeEnvWarning is the startup warning for stray SANDBOX0D_ variables:
// each with the nearest variable that is a key, as a misspelt file key gets
// the nearest key.
func describeEnvWarning(names []string) string {
	var known []string
	for _, k := range knownKeys(reflect.TypeOf(Config{}), "") {
		if !strings.Contains(k, "[]") {
			known = append(known, EnvName(k))
		}
	}
	for name := range silentEnv {
		known = append(known, name)
	}
	sort.Strings(known) // ties go to the same name every time
	described := make([]string, len(names))
	for i, name := range names {
		described[i] = name
		if near := closest(name, known); near != "" {
			described[i] += " (did you mean " + near + "?)"
		}
	}
	return fmt.Sprintf("environment variables %s match no config key and are ignored", strings.Join(described, ", "))
}
