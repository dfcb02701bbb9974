package local

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSDKRunReadListStream runs the example harness as an agent and reads
// the session back with the official Go SDK: get, list events page by
// page, stream events, list sessions with filters.
func TestSDKRunReadListStream(t *testing.T) {
	harness, err := filepath.Abs("../../examples/echo-harness.sh")
	require.NoError(t, err)
	rig := newRig(t, []Agent{{ID: "agent_echo", Version: 1, Command: []string{"/bin/sh", harness}}}, nil)
	require.NoError(t, os.WriteFile(filepath.Join(rig.cfg.FilesDir, "notes.txt"), []byte("notes"), 0o600))

	id := rig.create("agent_echo", func(req *sessions.CreateRequest) {
		req.InitialEvents = append(req.InitialEvents,
			json.RawMessage(`{"type":"system.message","content":[{"type":"text","text":"be brief"}]}`))
		req.Resources = []sessions.Resource{{Type: "file", FileID: "notes.txt"}}
		req.Metadata = map[string]string{"team": "infra"}
	})
	require.True(t, strings.HasPrefix(id, "sesn_"))
	ctx := t.Context()

	// Stream with Last-Event-ID 0 (the extension that replays from the
	// first event; the stream is a live tail otherwise) and follow to the
	// end of the turn (an idle session's stream stays open for the next turn).
	stream := rig.client.Beta.Sessions.Events.StreamEvents(ctx, id, anthropic.BetaSessionEventStreamParams{}, option.WithHeader("Last-Event-ID", "0"))
	var streamed []anthropic.BetaManagedAgentsStreamSessionEventsUnion
	for stream.Next() {
		streamed = append(streamed, stream.Current())
		if stream.Current().Type == "session.status_idle" {
			break
		}
	}
	require.NoError(t, stream.Err())
	require.NoError(t, stream.Close())
	rig.waitDone(id)

	var types, texts []string
	for _, ev := range streamed {
		types = append(types, ev.Type)
		if ev.Type == "agent.message" {
			texts = append(texts, messageText([]byte(ev.RawJSON())))
		}
		assert.True(t, strings.HasPrefix(ev.ID, "sevt_"), "event id %q", ev.ID)
		assert.False(t, ev.ProcessedAt.IsZero())
	}
	require.Equal(t, []string{"user.message", "system.message", "session.status_running",
		"agent.message", "agent.message", "agent.message", "agent.message", "agent.message",
		"session.status_idle"}, types)
	assert.Equal(t, "session "+id+" in "+filepath.Join(rig.cfg.WorkspaceDir, id), texts[0])
	assert.Equal(t, "turn 1: received 2 event(s), 1 user message(s); 0 earlier turn(s) here", texts[1])
	assert.Equal(t, "prompt: hello from the deployment", texts[2])
	assert.Equal(t, "workspace holds: uploads ", texts[3])
	assert.Equal(t, "echo-harness done", texts[4], "a JSON line with a known type is kept as is")
	last := streamed[len(streamed)-1].AsSessionStatusIdle()
	assert.Equal(t, "end_turn", last.StopReason.Type)
	assert.Equal(t, "null", last.JSON.StopDetails.Raw(), "stop_details is required: null, not absent")

	// Get.
	sess, err := rig.client.Beta.Sessions.Get(ctx, id, anthropic.BetaSessionGetParams{})
	require.NoError(t, err)
	assert.Equal(t, id, sess.ID)
	assert.Equal(t, anthropic.BetaManagedAgentsSessionStatusIdle, sess.Status)
	assert.Equal(t, "depl_test", sess.DeploymentID)
	assert.Equal(t, "agent_echo", sess.Agent.ID)
	assert.Equal(t, int64(1), sess.Agent.Version)
	assert.Equal(t, testEnvironment, sess.EnvironmentID)
	assert.Equal(t, map[string]string{"team": "infra"}, sess.Metadata)
	// Unset strings are null, as the official types have them, not "".
	assert.Equal(t, "null", sess.JSON.Title.Raw())
	assert.Equal(t, "null", sess.Agent.JSON.Description.Raw())
	assert.Equal(t, "null", sess.Agent.JSON.System.Raw())
	assert.Equal(t, `""`, sess.Agent.Model.JSON.ID.Raw(), "a command agent without a model: unknown, not \"local\"")
	assert.False(t, sess.CreatedAt.IsZero())
	assert.False(t, sess.UpdatedAt.Before(sess.CreatedAt))
	assert.True(t, sess.ArchivedAt.IsZero())
	require.Len(t, sess.Resources, 1)
	assert.Equal(t, "notes.txt", sess.Resources[0].FileID)
	// The path inside the workspace, as the official API shows it, not
	// where the workspace is on this machine.
	assert.Equal(t, "/workspace/uploads/notes.txt", sess.Resources[0].MountPath)
	copied, err := os.ReadFile(filepath.Join(rig.cfg.WorkspaceDir, id, "uploads", "notes.txt"))
	require.NoError(t, err)
	assert.Equal(t, "notes", string(copied))

	// List events two at a time: same events, same order as the stream.
	pager := rig.client.Beta.Sessions.Events.ListAutoPaging(ctx, id, anthropic.BetaSessionEventListParams{
		Limit: anthropic.Int(2)})
	var listed []string
	for pager.Next() {
		listed = append(listed, pager.Current().ID)
		if ev := pager.Current(); ev.Type == "session.status_idle" {
			assert.Equal(t, "null", ev.AsSessionStatusIdle().JSON.StopDetails.Raw(), "listed idle: stop_details null")
		}
	}
	require.NoError(t, pager.Err())
	var streamedIDs []string
	for _, ev := range streamed {
		streamedIDs = append(streamedIDs, ev.ID)
	}
	assert.Equal(t, streamedIDs, listed)

	// Newest first, filtered by type.
	page, err := rig.client.Beta.Sessions.Events.List(ctx, id, anthropic.BetaSessionEventListParams{
		Order: anthropic.BetaSessionEventListParamsOrderDesc,
		Types: []anthropic.BetaManagedAgentsSessionEventType{"agent.message"}, Limit: anthropic.Int(1)})
	require.NoError(t, err)
	require.Len(t, page.Data, 1)
	assert.Equal(t, "agent.message", page.Data[0].Type)
	assert.Equal(t, streamedIDs[7], page.Data[0].ID)
	assert.NotEmpty(t, page.NextPage)

	// Sessions list with the deployment and status filters.
	sessionsOf := func(params anthropic.BetaSessionListParams) []string {
		var ids []string
		pager := rig.client.Beta.Sessions.ListAutoPaging(ctx, params)
		for pager.Next() {
			ids = append(ids, pager.Current().ID)
		}
		require.NoError(t, pager.Err())
		return ids
	}
	assert.Equal(t, []string{id}, sessionsOf(anthropic.BetaSessionListParams{
		DeploymentID: anthropic.String("depl_test"), Statuses: []string{"idle"}}))
	assert.Empty(t, sessionsOf(anthropic.BetaSessionListParams{
		DeploymentID: anthropic.String("depl_test"), Statuses: []string{"running", "rescheduling"}}))
	assert.Empty(t, sessionsOf(anthropic.BetaSessionListParams{DeploymentID: anthropic.String("depl_other")}))

	stderr, err := rig.b.StderrTail(id)
	require.NoError(t, err)
	assert.Equal(t, "echo-harness: finished\n", string(stderr))
}

// TestSDKInterruptLongRunningHarness interrupts a turn that would run for a
// long time: its whole process group goes, the session goes idle without an
// error (not terminated), and the next message runs another turn.
func TestSDKInterruptLongRunningHarness(t *testing.T) {
	rig := newRig(t, []Agent{shAgent("agent_sleepy",
		`if [ "$SANDBOX0D_TURN" = 1 ]; then sleep 1000 & echo "child $!"; echo ready; wait; else echo "turn $SANDBOX0D_TURN: $SANDBOX0D_PROMPT"; fi`)}, nil)
	id := rig.create("agent_sleepy", nil)
	ctx := t.Context()

	stream := rig.client.Beta.Sessions.Events.StreamEvents(ctx, id, anthropic.BetaSessionEventStreamParams{}, option.WithHeader("Last-Event-ID", "0"))
	defer stream.Close()
	for stream.Next() {
		if ev := stream.Current(); ev.Type == "agent.message" && messageText([]byte(ev.RawJSON())) == "ready" {
			break
		}
	}
	require.NoError(t, stream.Err())
	child := 0
	for _, text := range rig.texts(id) {
		if pid, ok := strings.CutPrefix(text, "child "); ok {
			child, _ = strconv.Atoi(pid)
		}
	}
	require.True(t, processAlive(child), "child %d", child)

	sess, err := rig.client.Beta.Sessions.Get(ctx, id, anthropic.BetaSessionGetParams{})
	require.NoError(t, err)
	require.Equal(t, anthropic.BetaManagedAgentsSessionStatusRunning, sess.Status)

	sent, err := rig.client.Beta.Sessions.Events.Send(ctx, id, anthropic.BetaSessionEventSendParams{
		Events: []anthropic.BetaManagedAgentsEventParamsUnion{{
			OfUserInterrupt: &anthropic.BetaManagedAgentsUserInterruptEventParams{}}},
	})
	require.NoError(t, err)
	require.Len(t, sent.Data, 1)
	assert.Equal(t, "user.interrupt", sent.Data[0].Type)

	var rest []string
	for stream.Next() {
		rest = append(rest, stream.Current().Type)
		if stream.Current().Type == "session.status_idle" {
			break
		}
	}
	require.NoError(t, stream.Err())
	assert.Equal(t, []string{"user.interrupt", "session.status_idle"}, rest,
		"an interrupt returns control to the user without a session.error")
	assert.Equal(t, "null", stream.Current().AsSessionStatusIdle().JSON.StopDetails.Raw(), "an interrupt's idle has stop_details null")
	rig.waitDone(id)

	sess, err = rig.client.Beta.Sessions.Get(ctx, id, anthropic.BetaSessionGetParams{})
	require.NoError(t, err)
	assert.Equal(t, anthropic.BetaManagedAgentsSessionStatusIdle, sess.Status)
	// The harness's background child is in its process group: it must go too.
	// Its exit is the kernel's business after the signal, so poll for it.
	require.Eventually(t, func() bool { return processGone(child) }, waitLimit, 10*time.Millisecond)

	// The session takes the next message.
	_, err = rig.client.Beta.Sessions.Events.Send(ctx, id, anthropic.BetaSessionEventSendParams{
		Events: []anthropic.BetaManagedAgentsEventParamsUnion{{OfUserMessage: &anthropic.BetaManagedAgentsUserMessageEventParams{
			Content: []anthropic.BetaManagedAgentsUserMessageEventParamsContentUnion{{OfText: &anthropic.BetaManagedAgentsTextBlockParam{Text: "again"}}}}}},
	})
	require.NoError(t, err)
	rig.waitForText(id, "turn 2: again")
	assert.Equal(t, statusIdle, rig.waitDone(id).Status)
}
