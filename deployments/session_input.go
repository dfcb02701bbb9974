package deployments

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/sandbox0/sandbox0d/sessions"
)

// MaxTitleLen bounds a session title.
const MaxTitleLen = 512

// SessionInput is a validated create-session body (POST /v1/sessions on a
// backend that creates sessions itself). It is validated with the same rules
// and field paths as a deployment, so a session and a deployment refuse the
// same input with the same 400s.
type SessionInput struct {
	Agent         AgentInput
	EnvironmentID string
	Title         string
	InitialEvents []json.RawMessage // may be empty: the session waits idle
	Resources     []sessions.Resource
	VaultIDs      []string
	Metadata      map[string]string
	Budget        json.RawMessage
}

var sessionCreateFields = []string{"agent", "environment_id", "title", "initial_events", "resources",
	"vault_ids", "metadata", "budget"}

// DecodeSessionCreate parses and validates a create-session body. Resource
// tokens are returned in the clear, for the caller to use and drop.
func DecodeSessionCreate(body []byte) (SessionInput, error) {
	members, err := topLevel(body, sessionCreateFields)
	if err != nil {
		return SessionInput{}, err
	}
	in, err := decodeSessionCreate(members)
	if err != nil {
		return in, err
	}
	// The same control-character rule as a deployment's strings (metadata
	// values, resource fields), after the per-field decoders.
	return in, checkStrings(members)
}

func decodeSessionCreate(members map[string]json.RawMessage) (SessionInput, error) {
	var in SessionInput
	var err error
	for _, req := range []string{"agent", "environment_id"} {
		if raw, ok := members[req]; !ok || isNull(raw) {
			return in, invalid(req, "is required")
		}
	}
	if in.Agent, err = decodeAgent(members["agent"]); err != nil {
		return in, err
	}
	if in.EnvironmentID, err = decodeID("environment_id", members["environment_id"]); err != nil {
		return in, err
	}
	if raw, ok := members["title"]; ok && !isNull(raw) {
		if in.Title, err = decodeTitle(raw); err != nil {
			return in, err
		}
	}
	if raw, ok := members["initial_events"]; ok && !isNull(raw) && string(raw) != "[]" {
		if in.InitialEvents, err = decodeInitialEvents(raw); err != nil {
			return in, err
		}
	}
	if raw, ok := members["resources"]; ok && !isNull(raw) {
		rs, err := decodeResources(raw)
		if err != nil {
			return in, err
		}
		for _, r := range rs {
			res := sessions.Resource{Type: r.Type, URL: r.URL, Checkout: r.Checkout, FileID: r.FileID,
				MemoryStoreID: r.MemoryStoreID, AuthorizationToken: r.Token}
			if r.MountPath != nil {
				res.MountPath = *r.MountPath
			}
			if r.Access != nil {
				res.Access = *r.Access
			}
			if r.Instructions != nil {
				res.Instructions = *r.Instructions
			}
			in.Resources = append(in.Resources, res)
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
	return in, nil
}

// SessionUpdate is a validated update-session body: a title to set, and a
// metadata patch (a nil value deletes the key).
type SessionUpdate struct {
	Title    Field[string]
	Metadata map[string]*string
}

// DecodeSessionUpdate parses and validates an update-session body. Fields a
// self-hosted session cannot change (agent, budget, vault_ids) are refused
// by name.
func DecodeSessionUpdate(body []byte) (SessionUpdate, error) {
	var up SessionUpdate
	members, err := topLevel(body, []string{"title", "metadata", "agent", "budget", "vault_ids"})
	if err != nil {
		return up, err
	}
	for _, f := range []string{"agent", "budget", "vault_ids"} {
		if _, ok := members[f]; ok {
			return up, invalid(f, "cannot be changed on a session of this backend; create a new session instead")
		}
	}
	if raw, ok := members["title"]; ok {
		up.Title.Set = true
		if isNull(raw) {
			// null clears: Value stays zero
		} else if up.Title.Value, err = decodeTitle(raw); err != nil {
			return up, err
		}
	}
	if raw, ok := members["metadata"]; ok && !isNull(raw) {
		if up.Metadata, err = decodeMetadataPatch(raw, true); err != nil {
			return up, err
		}
	}
	return up, nil
}

func decodeTitle(raw json.RawMessage) (string, error) {
	s, err := decodeString("title", raw)
	if err != nil {
		return "", err
	}
	if n := utf8.RuneCountInString(s); n > MaxTitleLen {
		return "", invalid("title", "is %d characters long, at most %d allowed", n, MaxTitleLen)
	}
	return s, nil
}

// CheckSessionEvent validates one user.message or system.message sent to a
// session, with the rules of initial events; path names it in errors
// ("events[0]").
func CheckSessionEvent(path string, raw json.RawMessage) error {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return invalid(path, "must be an event object with a type")
	}
	switch head.Type {
	case "user.message":
		return checkUserMessage(path, raw)
	case "system.message":
		return checkSystemMessage(path, raw)
	}
	return invalid(path+".type", "unsupported event type %q: expected user.message or system.message", head.Type)
}
