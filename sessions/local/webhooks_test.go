package local

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks/event"
)

type testSink struct{ notified atomic.Int32 }

func (*testSink) Enabled() bool { return true }
func (s *testSink) Notify()     { s.notified.Add(1) }

// outboxSince returns the outbox events after the first skip ones, as
// "type object" strings.
func outboxSince(t *testing.T, st *store.Store, skip *int) []string {
	t.Helper()
	var all []store.WebhookEvent
	require.NoError(t, st.View(func(tx *store.Tx) error {
		var err error
		all, err = tx.OutboxWebhookEvents(1 << 20)
		return err
	}))
	var out []string
	for _, e := range all[*skip:] {
		out = append(out, e.Type+" "+e.ObjectID)
	}
	*skip = len(all)
	return out
}

// Each session change a webhook reports is appended with it: creation, a
// turn starting and ending (running, idle), archiving, deletion, and a
// harness failure (terminated); a refused change appends nothing.
func TestSessionChangesAppendWebhookEvents(t *testing.T) {
	sink := &testSink{}
	rig := newRig(t, []Agent{shAgent("agent_echo", `echo "turn $SANDBOX0D_TURN"`), shAgent("agent_fail", `exit 3`),
		shAgent("agent_block", blockingScript)}, func(c *Config) { c.Events = sink })
	ctx := t.Context()
	seen := 0

	id := rig.create("agent_echo", nil)
	rig.waitDone(id)
	assert.Equal(t, []string{event.SessionCreated + " " + id, event.SessionStatusRunStarted + " " + id,
		event.SessionStatusIdled + " " + id}, outboxSince(t, rig.st, &seen))

	_, err := rig.client.Beta.Sessions.Events.Send(ctx, id, anthropic.BetaSessionEventSendParams{
		Events: []anthropic.BetaManagedAgentsEventParamsUnion{{OfUserMessage: &anthropic.BetaManagedAgentsUserMessageEventParams{
			Content: []anthropic.BetaManagedAgentsUserMessageEventParamsContentUnion{{OfText: &anthropic.BetaManagedAgentsTextBlockParam{Text: "again"}}}}}},
	})
	require.NoError(t, err)
	rig.waitForText(id, "turn 2")
	rig.waitDone(id)
	assert.Equal(t, []string{event.SessionStatusRunStarted + " " + id, event.SessionStatusIdled + " " + id},
		outboxSince(t, rig.st, &seen), "a turn's own events are not webhooks; its status changes are")

	_, err = rig.client.Beta.Sessions.Archive(ctx, id, anthropic.BetaSessionArchiveParams{})
	require.NoError(t, err)
	_, err = rig.client.Beta.Sessions.Archive(ctx, id, anthropic.BetaSessionArchiveParams{})
	require.NoError(t, err)
	assert.Equal(t, []string{event.SessionArchived + " " + id}, outboxSince(t, rig.st, &seen), "archiving twice reports once")

	_, err = rig.client.Beta.Sessions.Delete(ctx, id, anthropic.BetaSessionDeleteParams{})
	require.NoError(t, err)
	assert.Equal(t, []string{event.SessionDeleted + " " + id}, outboxSince(t, rig.st, &seen))

	failing := rig.create("agent_fail", nil)
	rig.waitDone(failing)
	assert.Equal(t, []string{event.SessionCreated + " " + failing, event.SessionStatusRunStarted + " " + failing,
		event.SessionStatusTerminated + " " + failing}, outboxSince(t, rig.st, &seen))

	// Archiving a running session is refused: no event.
	busy := rig.create("agent_block", nil)
	rig.waitForText(busy, "ready ")
	assert.Equal(t, []string{event.SessionCreated + " " + busy, event.SessionStatusRunStarted + " " + busy},
		outboxSince(t, rig.st, &seen))
	_, err = rig.client.Beta.Sessions.Archive(ctx, busy, anthropic.BetaSessionArchiveParams{})
	var apiErr *anthropic.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusConflict, apiErr.StatusCode)
	assert.Empty(t, outboxSince(t, rig.st, &seen))
	assert.Positive(t, sink.notified.Load())
}
