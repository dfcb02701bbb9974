package local

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/internal/tssdktest"
)

// turnsScript answers each turn with one line naming the turn and its
// prompt.
const turnsScript = `cat > /dev/null; echo "turn $SANDBOX0D_TURN: $SANDBOX0D_PROMPT"`

// TestSDKOfficialStreamPatternTurns runs the official pattern with the Go
// SDK for three turns of one session: open the stream, send a
// user.message, read until session.status_idle. The stream is a live tail,
// so each turn reads its own events only (a replaying stream would stop at
// turn 1's idle in turn 2), and lists plus the streams cover the history
// once.
func TestSDKOfficialStreamPatternTurns(t *testing.T) {
	rig := newRig(t, []Agent{shAgent("agent_turns", turnsScript)}, nil)
	ctx := t.Context()
	sess, err := rig.client.Beta.Sessions.New(ctx, anthropic.BetaSessionNewParams{
		Agent:         anthropic.BetaSessionNewParamsAgentUnion{OfString: anthropic.String("agent_turns")},
		EnvironmentID: testEnvironment,
	})
	require.NoError(t, err)

	var streamedIDs []string
	for turn := 1; turn <= 3; turn++ {
		stream := rig.client.Beta.Sessions.Events.StreamEvents(ctx, sess.ID, anthropic.BetaSessionEventStreamParams{})
		prompt := fmt.Sprintf("message %d", turn)
		_, err := rig.client.Beta.Sessions.Events.Send(ctx, sess.ID, anthropic.BetaSessionEventSendParams{
			Events: []anthropic.BetaManagedAgentsEventParamsUnion{{OfUserMessage: &anthropic.BetaManagedAgentsUserMessageEventParams{
				Content: []anthropic.BetaManagedAgentsUserMessageEventParamsContentUnion{{OfText: &anthropic.BetaManagedAgentsTextBlockParam{Text: prompt}}}}}}})
		require.NoError(t, err)
		var types, texts []string
		for stream.Next() {
			ev := stream.Current()
			types = append(types, ev.Type)
			streamedIDs = append(streamedIDs, ev.ID)
			if ev.Type == "agent.message" {
				texts = append(texts, messageText([]byte(ev.RawJSON())))
			}
			if ev.Type == "session.status_idle" {
				break
			}
		}
		require.NoError(t, stream.Err())
		require.NoError(t, stream.Close())
		assert.Equal(t, []string{"user.message", "session.status_running", "agent.message", "session.status_idle"}, types,
			"turn %d reads its own events from the stream", turn)
		assert.Equal(t, []string{"turn " + strconv.Itoa(turn) + ": " + prompt}, texts)
	}

	var listed []string
	pager := rig.client.Beta.Sessions.Events.ListAutoPaging(ctx, sess.ID, anthropic.BetaSessionEventListParams{})
	for pager.Next() {
		listed = append(listed, pager.Current().ID)
	}
	require.NoError(t, pager.Err())
	assert.Equal(t, listed, streamedIDs, "the three streams delivered the history once, in order")
}

// TestStreamOpensAtTheTail: a stream opened on an idle session delivers
// nothing of its history, and the next turn's events from the first;
// Last-Event-ID still resumes after a given event.
func TestStreamOpensAtTheTail(t *testing.T) {
	rig := newRig(t, []Agent{shAgent("agent_turns", turnsScript)}, nil)
	id := rig.create("agent_turns", nil)
	rig.waitDone(id)
	history := rig.events(id)
	require.Len(t, history, 4)

	resp := rig.openStream(http.DefaultClient, id, nil)
	defer resp.Body.Close()
	_, err := rig.client.Beta.Sessions.Events.Send(t.Context(), id, anthropic.BetaSessionEventSendParams{
		Events: []anthropic.BetaManagedAgentsEventParamsUnion{{OfUserMessage: &anthropic.BetaManagedAgentsUserMessageEventParams{
			Content: []anthropic.BetaManagedAgentsUserMessageEventParamsContentUnion{{OfText: &anthropic.BetaManagedAgentsTextBlockParam{Text: "again"}}}}}}})
	require.NoError(t, err)
	frames := readFrames(t, resp.Body)
	require.Len(t, frames, 4)
	assert.Equal(t, uint64(len(history)+1), frames[0].id, "the first frame is the first event after the stream opened")
	assert.Equal(t, eventUserMessage, frames[0].eventType)
	assert.Equal(t, eventStatusIdle, frames[3].eventType)

	resp2 := rig.openStream(http.DefaultClient, id, http.Header{"Last-Event-ID": {"2"}})
	defer resp2.Body.Close()
	replayed := readFrames(t, resp2.Body)
	require.NotEmpty(t, replayed)
	assert.Equal(t, uint64(3), replayed[0].id)
	assert.Equal(t, eventAgentMessage, replayed[0].eventType)
}

// TestTypeScriptSDKOfficialStreamPattern runs the official pattern with the
// official TypeScript SDK (testdata/tssdk/stream.mjs) for three turns.
// Needs node and `npm ci --prefix testdata/tssdk`; skipped otherwise.
func TestTypeScriptSDKOfficialStreamPattern(t *testing.T) {
	ts := tssdktest.Require(t)
	rig := newRig(t, []Agent{shAgent("agent_turns", turnsScript)}, nil)
	out := ts.Run(t, "stream.mjs", "SANDBOX0D_URL="+rig.srv.URL, "SANDBOX0D_API_KEY=sk-test",
		"SANDBOX0D_AGENT=agent_turns", "SANDBOX0D_ENVIRONMENT="+testEnvironment)
	var got struct {
		Turns []struct {
			Types []string `json:"types"`
			Texts []string `json:"texts"`
		} `json:"turns"`
		StreamedIDs []string `json:"streamedIDs"`
		ListedIDs   []string `json:"listedIDs"`
	}
	require.NoError(t, json.Unmarshal(out, &got), "%s", out)
	require.Len(t, got.Turns, 3)
	for i, turn := range got.Turns {
		assert.Equal(t, []string{"user.message", "session.status_running", "agent.message", "session.status_idle"}, turn.Types, "turn %d", i+1)
		assert.Equal(t, []string{fmt.Sprintf("turn %d: message %d", i+1, i+1)}, turn.Texts)
	}
	assert.Equal(t, got.ListedIDs, got.StreamedIDs)
}
