package daemon

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/spf13/viper"
)

// DefaultsYAML is every config key with the default this host would use,
// each under a comment giving its meaning; it loads back as the defaults
// (`sandbox0d config defaults > config.yaml` is a starting point). List
// sections are empty, their items' keys listed in comments.
func DefaultsYAML() (string, error) {
	if missing := MissingMeanings(); len(missing) > 0 {
		return "", fmt.Errorf("config keys without a meaning in daemon/config_doc.go keyDocs: %s", strings.Join(missing, ", "))
	}
	v := viper.New()
	setDefaults(v)
	var b strings.Builder
	b.WriteString("# sandbox0d configuration: every key with its default.\n")
	b.WriteString("# Relative paths in this file resolve next to it.\n")
	writeDefaults(&b, v, reflect.TypeOf(Config{}), "", "")
	return b.String(), nil
}

func writeDefaults(b *strings.Builder, v *viper.Viper, t reflect.Type, path, indent string) {
	for i := range t.NumField() {
		f := t.Field(i)
		name := tagName(f)
		if name == "" {
			continue
		}
		key, ft := join(path, name), f.Type
		switch {
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			fmt.Fprintf(b, "%s# %s; each item:\n", indent, keyDocs[key].Meaning)
			for _, item := range configFields(ft.Elem(), key+"[]") {
				if !item.list {
					fmt.Fprintf(b, "%s#   %s: %s\n", indent, strings.TrimPrefix(item.key, key+"[]."), keyDocs[item.key].Meaning)
				}
			}
			fmt.Fprintf(b, "%s%s: []\n", indent, name)
		case ft.Kind() == reflect.Struct && ft.PkgPath() != "time":
			fmt.Fprintf(b, "%s%s:\n", indent, name)
			writeDefaults(b, v, ft, key, indent+"  ")
		default:
			fmt.Fprintf(b, "%s# %s\n", indent, keyDocs[key].Meaning)
			fmt.Fprintf(b, "%s%s: %s\n", indent, name, yamlValue(v.Get(key)))
		}
	}
}
