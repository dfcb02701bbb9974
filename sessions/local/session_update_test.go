package local

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/webhooks/event"
)

// updatedEvents lists a session's session.updated events through the SDK.
func updatedEvents(t *testing.T, rig *testRig, id string) []anthropic.BetaManagedAgentsSessionUpdatedEvent {
	t.Helper()
	page, err := rig.client.Beta.Sessions.Events.List(t.Context(), id, anthropic.BetaSessionEventListParams{})
	require.NoError(t, err)
	var out []anthropic.BetaManagedAgentsSessionUpdatedEvent
	for _, ev := range page.Data {
		if ev.Type == "session.updated" {
			out = append(out, ev.AsSessionUpdated())
		}
	}
	return out
}

// POST /v1/sessions/{id} that changes something records a session.updated
// event carrying only what changed, and appends the session.updated webhook
// in the same transaction; one that changes nothing records neither.
func TestSDKSessionUpdateEmitsSessionUpdated(t *testing.T) {
	sink := &testSink{}
	rig := newRig(t, []Agent{shAgent("agent_echo", `echo hi`)}, func(c *Config) { c.Events = sink })
	ctx := t.Context()
	id := rig.create("agent_echo", func(req *sessions.CreateRequest) { req.Metadata = map[string]string{"team": "infra"} })
	rig.waitDone(id)
	seen := 0
	outboxSince(t, rig.st, &seen)

	// The stream, opened before the update, delivers the event too.
	stream := rig.client.Beta.Sessions.Events.StreamEvents(ctx, id, anthropic.BetaSessionEventStreamParams{})
	defer stream.Close()

	_, err := rig.client.Beta.Sessions.Update(ctx, id, anthropic.BetaSessionUpdateParams{Title: anthropic.String("renamed")})
	require.NoError(t, err)
	evs := updatedEvents(t, rig, id)
	require.Len(t, evs, 1)
	assert.Equal(t, "renamed", evs[0].Title)
	assert.True(t, evs[0].JSON.Title.Valid())
	assert.False(t, evs[0].JSON.Metadata.Valid(), "metadata did not change: absent")
	assert.False(t, evs[0].JSON.Budget.Valid(), "budget did not change: absent")
	assert.False(t, evs[0].JSON.Agent.Valid(), "agent did not change: absent")
	assert.Regexp(t, `^sevt_`, evs[0].ID)
	assert.False(t, evs[0].ProcessedAt.IsZero())
	assert.Equal(t, []string{event.SessionUpdated + " " + id}, outboxSince(t, rig.st, &seen))

	found := false
	for stream.Next() {
		if stream.Current().Type == "session.updated" {
			found = true
			assert.Equal(t, evs[0].ID, stream.Current().AsSessionUpdated().ID)
			break
		}
	}
	require.NoError(t, stream.Err())
	assert.True(t, found, "the stream delivers session.updated")

	// Metadata: the whole bag after the update, title absent.
	_, err = rig.client.Beta.Sessions.Update(ctx, id, anthropic.BetaSessionUpdateParams{
		Metadata: map[string]string{"tier": "gold"}})
	require.NoError(t, err)
	evs = updatedEvents(t, rig, id)
	require.Len(t, evs, 2)
	assert.Equal(t, map[string]string{"team": "infra", "tier": "gold"}, evs[1].Metadata)
	assert.False(t, evs[1].JSON.Title.Valid(), "title did not change: absent")
	assert.Equal(t, []string{event.SessionUpdated + " " + id}, outboxSince(t, rig.st, &seen))

	// The same values again: nothing changed, nothing recorded.
	_, err = rig.client.Beta.Sessions.Update(ctx, id, anthropic.BetaSessionUpdateParams{
		Title: anthropic.String("renamed"), Metadata: map[string]string{"tier": "gold"}})
	require.NoError(t, err)
	assert.Len(t, updatedEvents(t, rig, id), 2)
	assert.Empty(t, outboxSince(t, rig.st, &seen))

	// A title cleared with null: the event says title null.
	req, err := http.NewRequest(http.MethodPost, rig.srv.URL+"/v1/sessions/"+id, strings.NewReader(`{"title":null}`))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	evs = updatedEvents(t, rig, id)
	require.Len(t, evs, 3)
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(evs[2].RawJSON()), &raw))
	assert.Equal(t, "null", string(raw["title"]))
	assert.NotContains(t, raw, "metadata")

	// A refused update (too many pairs) records nothing.
	big := map[string]string{}
	for i := range 20 {
		big[string(rune('a'+i))] = "x"
	}
	_, err = rig.client.Beta.Sessions.Update(ctx, id, anthropic.BetaSessionUpdateParams{Metadata: big})
	require.Error(t, err)
	assert.Len(t, updatedEvents(t, rig, id), 3)
	assert.Equal(t, []string{event.SessionUpdated + " " + id}, outboxSince(t, rig.st, &seen), "only the title clear")
}

// A session that has to wait for a slot reports session.status_rescheduled
// as a webhook, both when created waiting and when a later turn waits.
func TestRescheduledAppendsWebhookEvent(t *testing.T) {
	sink := &testSink{}
	rig := newRig(t, []Agent{shAgent("agent_block", blockingScript), shAgent("agent_quick", `echo done`)},
		func(c *Config) { c.Events = sink; c.MaxConcurrentSessions = 1 })
	seen := 0
	busy := rig.create("agent_block", nil)
	rig.waitForText(busy, "ready ")
	waiting := rig.create("agent_quick", nil)
	assert.Equal(t, []string{event.SessionCreated + " " + busy, event.SessionStatusRunStarted + " " + busy,
		event.SessionCreated + " " + waiting, event.SessionStatusRescheduled + " " + waiting},
		outboxSince(t, rig.st, &seen))

	_, err := rig.b.interrupt(busy)
	require.NoError(t, err)
	rig.waitDone(waiting)
	assert.Equal(t, []string{event.SessionStatusIdled + " " + busy, event.SessionStatusRunStarted + " " + waiting,
		event.SessionStatusIdled + " " + waiting}, outboxSince(t, rig.st, &seen))

	// An idle session sent a message while the slot is taken waits too.
	rig.send(busy, textEvent("again"))
	rig.waitForText(busy, "ready ")
	rig.send(waiting, textEvent("again"))
	assert.Equal(t, []string{event.SessionStatusRunStarted + " " + busy, event.SessionStatusRescheduled + " " + waiting},
		outboxSince(t, rig.st, &seen))
	assert.Equal(t, anthropic.BetaManagedAgentsSessionStatusRescheduling, rig.status(waiting))
}

// event_deltas is refused before the stream opens, naming the parameter and
// the way out; threads routes answer a 400 that says they are not
// supported.
func TestSDKEventDeltasAndThreadsRefused(t *testing.T) {
	rig := newRig(t, []Agent{shAgent("agent_echo", `echo hi`)}, nil)
	ctx := t.Context()
	id := rig.create("agent_echo", nil)
	rig.waitDone(id)

	stream := rig.client.Beta.Sessions.Events.StreamEvents(ctx, id, anthropic.BetaSessionEventStreamParams{
		EventDeltas: []anthropic.BetaManagedAgentsDeltaType{anthropic.BetaManagedAgentsDeltaTypeAgentMessage}})
	assert.False(t, stream.Next())
	status, body := apiStatus(t, stream.Err())
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "event_deltas: streaming previews")
	assert.Contains(t, body, "omit event_deltas")
	_ = stream.Close()

	_, err := rig.client.Beta.Sessions.Threads.List(ctx, id, anthropic.BetaSessionThreadListParams{})
	status, body = apiStatus(t, err)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "session threads are not supported by the local session backend")
	_, err = rig.client.Beta.Sessions.Threads.Get(ctx, "sthr_x", anthropic.BetaSessionThreadGetParams{SessionID: id})
	status, _ = apiStatus(t, err)
	assert.Equal(t, http.StatusBadRequest, status)
	_, err = rig.client.Beta.Sessions.Threads.Events.List(ctx, "sthr_x", anthropic.BetaSessionThreadEventListParams{SessionID: id})
	status, _ = apiStatus(t, err)
	assert.Equal(t, http.StatusBadRequest, status)
}
