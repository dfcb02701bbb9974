package local

import (
	"bytes"
	"encoding/json"
)

// upgradeStoredEvent brings an event stored by an earlier version to the
// current wire shape when it is read back, so list and stream serve one
// shape whatever version wrote the event. Today that is one change:
// session.status_idle gained stop_details (required by the official types,
// null when there is nothing to report).
func upgradeStoredEvent(eventType string, raw []byte) []byte {
	if eventType != eventStatusIdle || bytes.Contains(raw, []byte(`"stop_details"`)) {
		return raw
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return raw
	}
	if _, ok := obj["stop_details"]; ok {
		return raw
	}
	obj["stop_details"] = json.RawMessage("null")
	out, err := json.Marshal(obj)
	if err != nil {
		return raw
	}
	return out
}
