package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// plan is the answer of the plan and apply routes.
type plan struct {
	Set     string       `json:"set"`
	Hash    string       `json:"hash"`
	Applied bool         `json:"applied"`
	Changes []planChange `json:"changes"`
}

type planChange struct {
	Key          string      `json:"key"`
	Action       string      `json:"action"`
	DeploymentID string      `json:"deployment_id"`
	Diff         []fieldDiff `json:"diff"`
}

type fieldDiff struct {
	Field string          `json:"field"`
	From  json.RawMessage `json:"from"`
	To    json.RawMessage `json:"to"`
}

// planFooter is what the closing lines need to know about the command.
type planFooter struct {
	dryRun       bool
	dir, set     string
	prune, force bool
}

// planMarks are the one-character marks of each action, as diff tools use.
var planMarks = map[string]string{"create": "+", "update": "~", "unchanged": "=", "archive": "-"}

// maxKeyWidth bounds the key column; a longer key is shortened.
const maxKeyWidth = 60

// maxDiffValue bounds one printed value of a diff line; --json has all.
const maxDiffValue = 120

// writePlan prints the plan: one line per member of the set, the field
// changes of each update under it, then a count and what happened.
func writePlan(w io.Writer, p plan, f planFooter) error {
	fmt.Fprintf(w, "Set %s, plan %s\n", p.Set, p.Hash)
	counts := map[string]int{}
	keyWidth := 0
	for _, c := range p.Changes {
		keyWidth = max(keyWidth, min(len([]rune(oneLine(c.Key))), maxKeyWidth))
	}
	for _, c := range p.Changes {
		counts[c.Action]++
		mark, ok := planMarks[c.Action]
		if !ok {
			mark = "?"
		}
		line := fmt.Sprintf("  %s %-9s  %-*s", mark, c.Action, keyWidth, truncate(oneLine(c.Key), maxKeyWidth))
		if c.DeploymentID != "" {
			line += "  " + c.DeploymentID
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
		for _, d := range c.Diff {
			fmt.Fprintf(w, "      %s: %s -> %s\n", oneLine(d.Field), diffValue(d.From), diffValue(d.To))
		}
	}
	if len(p.Changes) == 0 {
		fmt.Fprintln(w, "  (the set has no members and the directory no documents)")
	}
	fmt.Fprintf(w, "%d to create, %d to update, %d unchanged, %d to archive.\n",
		counts["create"], counts["update"], counts["unchanged"], counts["archive"])
	changed := counts["create"]+counts["update"]+counts["archive"] > 0
	switch {
	case f.dryRun && changed:
		flags := ""
		if f.set != "default" {
			flags += " --set " + f.set
		}
		if f.prune {
			flags += " --prune"
		}
		if f.force {
			flags += " --force"
		}
		fmt.Fprintf(w, "Dry run: nothing changed. To apply exactly this plan: sandbox0d apply -f %s%s --if-match %s\n", f.dir, flags, p.Hash)
	case f.dryRun || !changed:
		fmt.Fprintln(w, "Nothing to apply: the set already matches the files.")
	case p.Applied:
		fmt.Fprintf(w, "Applied in one transaction: %d created, %d updated, %d archived.\n",
			counts["create"], counts["update"], counts["archive"])
	default:
		// The contract says an apply with changes commits them; say so
		// plainly rather than claim success if a daemon answers otherwise.
		fmt.Fprintln(w, "The daemon reports the plan as not applied.")
	}
	return nil
}

// diffValue prints one side of a field diff: compact JSON, shortened; a
// missing value is "(none)", and the daemon's token markers are shown as
// the words they are.
func diffValue(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "(none)"
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && (s == "(sealed)" || s == "(changed)") {
		return s
	}
	var compact bytes.Buffer
	if json.Compact(&compact, raw) == nil {
		raw = compact.Bytes()
	}
	return truncate(oneLine(strings.TrimSpace(string(raw))), maxDiffValue)
}
