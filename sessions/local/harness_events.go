package local

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/sandbox0/sandbox0d/sessions/local/harness"
)

// harnessIDs maps the ids a harness gave its tool uses and model request
// starts, when they are not of the daemon's form and so were replaced, to
// the ids they were stored with, so a later event's reference
// (tool_use_id, mcp_tool_use_id, model_request_start_id) is mapped too and
// never names an event that does not exist. One map per turn: a turn's
// events are what a harness refers to, and max_events bounds its size.
type harnessIDs map[string]string

// harnessEvent records one event a harness emitted without an id map (a
// harness's own ids then name nothing the daemon can map).
func harnessEvent(raw []byte, at time.Time) []byte {
	ev, _ := harnessIDs{}.event(raw, at)
	return ev
}

// event records an event a harness emitted. A JSON object of a type a
// harness may emit, in the official shape of that type
// (harness.CheckEvent), is kept as sent with processed_at, its id (kept
// when the harness minted it with harness.NewEventID, fresh otherwise) and
// its reference mapped. Anything else is stored as an agent.message whose
// text is the line as the harness printed it; rejected says why, for the
// operator's log.
func (ids harnessIDs) event(raw []byte, at time.Time) (ev []byte, rejected error) {
	if len(raw) == 0 || raw[0] != '{' {
		return textMessageEvent(harness.CleanText(string(raw)), at), nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return textMessageEvent(harness.CleanText(string(raw)), at), nil
	}
	eventType, err := harness.CheckEvent(obj)
	if err != nil {
		return textMessageEvent(harness.CleanText(string(raw)), at), err
	}
	if field := harness.ReferenceField(eventType); field != "" {
		var ref string
		_ = json.Unmarshal(obj[field], &ref) // CheckEvent made sure it is a string
		if mapped, ok := ids[ref]; ok {
			obj[field], _ = json.Marshal(mapped)
		} else if !harness.IsEventID(ref) {
			return textMessageEvent(harness.CleanText(string(raw)), at), fmt.Errorf(
				"%s: %s %q names no event of this turn; give the event it refers to that id first, or mint ids with harness.NewEventID",
				eventType, field, ref)
		}
	}
	var own string
	_ = json.Unmarshal(obj["id"], &own) // a string or absent (CheckEvent)
	if !harness.IsEventID(own) {
		id := newID(eventIDPrefix)
		if own != "" && harness.Referable(eventType) {
			ids[own] = id
		}
		obj["id"], _ = json.Marshal(id)
	}
	if eventType == "span.model_request_end" {
		// Its cost went to the session's usage (harness.SpanUsage); no SDK
		// defines the member on the span.
		delete(obj, harness.ListCostField)
	}
	obj["processed_at"], _ = json.Marshal(at.UTC())
	out, _ := json.Marshal(obj) // re-encoding decoded RawMessages cannot fail
	return out, nil
}
