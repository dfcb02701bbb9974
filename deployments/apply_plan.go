package deployments

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/sessions"
)

// Plan actions.
const (
	ActionCreate    = "create"
	ActionUpdate    = "update"
	ActionUnchanged = "unchanged"
	ActionArchive   = "archive"
)

// Plan is what an apply of a set does (or did).
type Plan struct {
	Set     string       `json:"set"`
	Hash    string       `json:"hash"`
	Applied bool         `json:"applied"`
	Changes []PlanChange `json:"changes"`
}

// PlanChange is one member of the set and what happens to it.
type PlanChange struct {
	Key          string      `json:"key"`
	Action       string      `json:"action"`
	DeploymentID string      `json:"deployment_id,omitempty"`
	Diff         []FieldDiff `json:"diff,omitempty"`

	doc   *ApplyDocument // nil for an archive
	agent sessions.AgentRef
}

// FieldDiff is one changed field. A token is never shown: its values are
// "(sealed)" / "(changed)" / null.
type FieldDiff struct {
	Field string          `json:"field"`
	From  json.RawMessage `json:"from"`
	To    json.RawMessage `json:"to"`
}

// Changed reports whether the plan would commit anything.
func (p *Plan) Changed() bool {
	for _, c := range p.Changes {
		if c.Action != ActionUnchanged {
			return true
		}
	}
	return false
}

// Counts returns how many changes have each action.
func (p *Plan) Counts() map[string]int {
	n := map[string]int{}
	for _, c := range p.Changes {
		n[c.Action]++
	}
	return n
}

// hashPlan hashes the changes' canonical JSON: the same documents against
// the same state give the same hash, whatever order they came in.
func hashPlan(set string, changes []PlanChange) string {
	data, _ := json.Marshal(struct {
		Set     string       `json:"set"`
		Changes []PlanChange `json:"changes"`
	}{set, changes})
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// desired is a document as the deployment it asks for (tokens aside).
type desired struct {
	doc   *ApplyDocument
	agent sessions.AgentRef
}

// computePlan compares the set's members (id → deployment, by key) with the
// documents. open opens a stored token for the constant-time comparison.
func computePlan(set string, members, adopted map[string]*Deployment, want []desired, prune bool,
	open func(owner crypto.Owner, sealed []byte) ([]byte, error)) ([]PlanChange, error) {
	changes := make([]PlanChange, 0, len(want)+len(members))
	inFiles := make(map[string]bool, len(want))
	for i := range want {
		w := want[i]
		inFiles[w.doc.Key] = true
		cur, ok := members[w.doc.Key]
		adopting := false
		if !ok {
			if cur, adopting = adopted[w.doc.Key]; !adopting {
				changes = append(changes, PlanChange{Key: w.doc.Key, Action: ActionCreate, doc: w.doc, agent: w.agent})
				continue
			}
		}
		diff, err := diffDeployment(cur, w, open)
		if err != nil {
			return nil, err
		}
		if adopting {
			// Taking ownership is itself the change, even when every field
			// already matches the file.
			diff = append([]FieldDiff{{Field: "managed_by", From: canon(nil), To: canon(ManagedBy{Set: set, Key: w.doc.Key})}}, diff...)
		}
		action := ActionUnchanged
		if len(diff) > 0 {
			action = ActionUpdate
		}
		changes = append(changes, PlanChange{Key: w.doc.Key, Action: action, DeploymentID: cur.ID, Diff: diff, doc: w.doc, agent: w.agent})
	}
	if prune {
		for key, d := range members {
			if !inFiles[key] {
				changes = append(changes, PlanChange{Key: key, Action: ActionArchive, DeploymentID: d.ID})
			}
		}
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Key < changes[j].Key })
	return changes, nil
}

func diffDeployment(cur *Deployment, w desired, open func(crypto.Owner, []byte) ([]byte, error)) ([]FieldDiff, error) {
	in := w.doc.Input
	var diff []FieldDiff
	add := func(field string, from, to any) {
		f, t := canon(from), canon(to)
		if !bytes.Equal(f, t) {
			diff = append(diff, FieldDiff{Field: field, From: f, To: t})
		}
	}
	add("name", cur.Name, in.Name)
	add("description", emptyNil(cur.Description), emptyNil(in.Description))
	add("agent", cur.Agent, w.agent)
	add("environment_id", cur.EnvironmentID, in.EnvironmentID)
	add("initial_events", cur.InitialEvents, in.InitialEvents)
	add("resources", withoutTokens(cur.Resources), withoutTokens(resourceInputs(in.Resources)))
	add("vault_ids", sliceNil(cur.VaultIDs), sliceNil(in.VaultIDs))
	add("metadata", mapNil(cur.Metadata), mapNil(in.Metadata))
	add("budget", rawNil(cur.Budget), rawNil(in.Budget))
	if cur.Schedule != nil && in.Schedule != nil {
		add("schedule.expression", cur.Schedule.Expression, in.Schedule.Expression)
		add("schedule.timezone", cur.Schedule.Timezone, in.Schedule.Timezone)
	} else {
		add("schedule", cur.Schedule, in.Schedule)
	}
	for i := 0; i < max(len(cur.Resources), len(in.Resources)); i++ {
		changed, from, to, err := tokenChange(cur, i, in.Resources, open)
		if err != nil {
			return nil, err
		}
		if changed {
			diff = append(diff, FieldDiff{Field: fieldAt("resources", i) + ".authorization_token", From: from, To: to})
		}
	}
	if w.doc.Paused != nil && *w.doc.Paused != (cur.PausedReason != nil) {
		// An error pause is run-time state: paused: false does not lift it.
		if *w.doc.Paused || cur.PausedReason.Type == PausedManual {
			add("paused", cur.PausedReason != nil, *w.doc.Paused)
		}
	}
	return diff, nil
}

var (
	tokenSealed  = json.RawMessage(`"(sealed)"`)
	tokenChanged = json.RawMessage(`"(changed)"`)
	jsonNull     = json.RawMessage(`null`)
)

// tokenChange compares the token at position i: the stored one is opened in
// memory and compared in constant time; neither value leaves this function.
func tokenChange(cur *Deployment, i int, in []ResourceInput, open func(crypto.Owner, []byte) ([]byte, error)) (bool, json.RawMessage, json.RawMessage, error) {
	var sealed []byte
	if i < len(cur.Resources) {
		sealed = cur.Resources[i].SealedToken
	}
	var token string
	if i < len(in) {
		token = in[i].Token
	}
	switch {
	case sealed == nil && token == "":
		return false, nil, nil, nil
	case sealed == nil:
		return true, jsonNull, tokenChanged, nil
	case token == "":
		return true, tokenSealed, jsonNull, nil
	}
	if open == nil {
		return false, nil, nil, &Error{Kind: KindUnavailable, Field: fieldAt("resources", i) + ".authorization_token",
			Message: "no secret keyring is configured, so tokens cannot be compared"}
	}
	plain, err := open(crypto.Owner{DeploymentID: cur.ID, Position: i}, sealed)
	if err != nil {
		// A token that cannot be opened (bound to another position) is
		// replaced: the file's value is the one to keep.
		return true, tokenSealed, tokenChanged, nil
	}
	same := subtle.ConstantTimeCompare(plain, []byte(token)) == 1
	clear(plain)
	if same {
		return false, nil, nil, nil
	}
	return true, tokenSealed, tokenChanged, nil
}

func canon(v any) json.RawMessage {
	data, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage(fmt.Sprintf("%q", err.Error()))
	}
	var buf bytes.Buffer
	if json.Compact(&buf, data) != nil {
		return data
	}
	return buf.Bytes()
}

func withoutTokens(rs []Resource) []Resource {
	if len(rs) == 0 {
		return nil
	}
	out := make([]Resource, len(rs))
	for i, r := range rs {
		r.SealedToken = nil
		out[i] = r
	}
	return out
}

func emptyNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func sliceNil[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func mapNil(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

func rawNil(r json.RawMessage) any {
	if len(r) == 0 || isNull(r) {
		return nil
	}
	return r
}
