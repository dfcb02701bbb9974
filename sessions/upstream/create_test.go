package upstream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/internal/fakeupstream"
	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/upstream"
)

func TestCreateSessionHappyPath(t *testing.T) {
	fake := newLoopback(t)
	b := newBackend(t, fake, false)

	id, err := b.CreateSession(t.Context(), runRequest("drun_1"))
	require.NoError(t, err)

	sess, ok := fake.Session(id)
	require.True(t, ok, "the returned id is a session the upstream created")
	assert.Equal(t, 1, fake.SessionsCreated())
	assert.Equal(t, "agent_1", sess.AgentID)
	assert.Equal(t, int64(2), sess.AgentVersion)
	assert.Equal(t, "env_1", sess.EnvironmentID)
	assert.Equal(t, []string{"vlt_1", "vlt_2"}, sess.VaultIDs)
	assert.Equal(t, map[string]string{
		"team":                        "search",
		upstream.MetadataDeploymentID: "depl_1",
		upstream.MetadataRunID:        "drun_1",
	}, sess.Metadata)
	assert.Equal(t, []fakeupstream.Resource{
		{Type: "github_repository", URL: "https://github.com/acme/app", Checkout: &fakeupstream.Checkout{Type: "branch", Name: "main"}, AuthorizationToken: repoToken},
		{Type: "file", FileID: "file_1", MountPath: "/mnt/data/input.csv"},
		{Type: "memory_store", MemoryStoreID: "memstore_1", Access: "read_only", Instructions: "notes"},
	}, sess.Resources, "the decrypted token reaches the upstream in its resource")

	events := fake.Events(id)
	require.Len(t, events, len(initialEvents))
	for i, ev := range events {
		var got, want map[string]any
		require.NoError(t, json.Unmarshal(ev.JSON, &got))
		require.NoError(t, json.Unmarshal(initialEvents[i], &want))
		assert.Equal(t, want["content"], got["content"], "event %d arrives in order", i)
	}

	reqs := fake.Requests()
	require.Len(t, reqs, 2, "one create, one events delivery: nothing else")
	for _, r := range reqs {
		assert.Equal(t, fake.APIKey(), r.Header.Get("X-Api-Key"))
		assert.Contains(t, r.Header.Get("anthropic-beta"), "managed-agents-2026-04-01")
		assert.NotEmpty(t, r.Header.Get("anthropic-version"))
		assert.Equal(t, "true", r.Query.Get("beta"))
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
		assert.NotEmpty(t, r.Header.Get("Idempotency-Key"))
	}
	assert.Equal(t, fakeupstream.RouteCreateSession, reqs[0].Route)
	assert.Equal(t, fakeupstream.RouteSendEvents, reqs[1].Route)
	assert.Zero(t, b.InFlight(), "the slot is released")
}

func TestUserMetadataCannotHideTheRun(t *testing.T) {
	fake := newLoopback(t)
	b := newBackend(t, fake, false)
	req := runRequest("drun_real")
	req.Metadata = map[string]string{upstream.MetadataRunID: "drun_forged"}
	id, err := b.CreateSession(t.Context(), req)
	require.NoError(t, err)
	sess, _ := fake.Session(id)
	assert.Equal(t, "drun_real", sess.Metadata[upstream.MetadataRunID])
}

// Issue 12 point 1: 16 metadata pairs is the documented maximum of a
// deployment and of a session; the run's own keys must not push it over.
func TestSixteenMetadataPairsStillCreateASession(t *testing.T) {
	for _, n := range []int{14, 15, 16} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			fake := newLoopback(t)
			b := newBackend(t, fake, false)
			req := runRequest("drun_full")
			req.Metadata = map[string]string{}
			for i := range n {
				req.Metadata[fmt.Sprintf("key_%02d", i)] = "v"
			}
			id, err := b.CreateSession(t.Context(), req)
			require.NoError(t, err)
			sess, _ := fake.Session(id)
			assert.LessOrEqual(t, len(sess.Metadata), fakeupstream.MaxMetadataPairs)
			for k, v := range req.Metadata {
				assert.Equal(t, v, sess.Metadata[k], "the user's metadata reaches the session intact")
			}
			if n <= 14 {
				assert.Equal(t, "drun_full", sess.Metadata[upstream.MetadataRunID], "the run keys are added when they fit")
			}
		})
	}
}

// Issue 12 point 3: the deployment's budget is stamped onto the session.
func TestBudgetIsSentWithTheSession(t *testing.T) {
	fake := newLoopback(t)
	b := newBackend(t, fake, false)
	req := runRequest("drun_budget")
	req.Budget = json.RawMessage(`{"type":"limit","max_list_cost":{"amount":"2500","currency":"USD"}}`)
	id, err := b.CreateSession(t.Context(), req)
	require.NoError(t, err)
	sess, _ := fake.Session(id)
	assert.JSONEq(t, string(req.Budget), string(sess.Budget))

	id, err = b.CreateSession(t.Context(), runRequest("drun_nobudget"))
	require.NoError(t, err)
	sess, _ = fake.Session(id)
	assert.Empty(t, sess.Budget)
}

// Issue 12 point 8: a run has a session or an error. When the events fail,
// the error names the half-started session, which is archived upstream.
func TestEventsDeliveryFailureArchivesTheSession(t *testing.T) {
	fake := newLoopback(t)
	b := newBackend(t, fake, false)
	fake.InjectFault(fakeupstream.RouteSendEvents, 1, fakeupstream.Fault{Status: 400, Message: "events[0]: unsupported block"})

	id, err := b.CreateSession(t.Context(), runRequest("drun_1"))

	require.Empty(t, id, "no session id comes back with an error")
	all := fake.Sessions()
	require.Len(t, all, 1)
	created := all[0]
	require.NotNil(t, created.ArchivedAt, "the half-started session is archived")
	assert.Len(t, fake.RequestsTo(fakeupstream.RouteArchiveSession), 1)
	re := requireRunError(t, err, sessions.ErrSessionCreationRejected, fake.APIKey())
	assert.Contains(t, re.Message, "session "+created.ID+" was created but its initial events were not delivered")
	assert.Contains(t, re.Message, "400")
	assert.Contains(t, re.Message, "request-id req_fake_")
	assert.Empty(t, fake.Events(created.ID))
}

func TestInvalidSnapshotIsNotSent(t *testing.T) {
	fake := newLoopback(t)
	b := newBackend(t, fake, false)
	req := runRequest("drun_1")
	req.Agent.Version = 0
	_, err := b.CreateSession(t.Context(), req)
	requireRunError(t, err, sessions.ErrSessionCreationRejected, fake.APIKey())
	assert.Empty(t, fake.Requests())
}

func TestQueuedCreationHonoursContext(t *testing.T) {
	fake := newLoopback(t)
	b := newBackend(t, fake, false, func(c *upstream.Config) { c.MaxConcurrency = 1 })
	fake.InjectFault(fakeupstream.RouteCreateSession, 1, fakeupstream.Fault{Hang: true})
	first := make(chan error, 1)
	go func() {
		_, err := b.CreateSession(t.Context(), runRequest("drun_1"))
		first <- err
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, fake.AwaitHung(ctx, 1))

	queued, cancelQueued := context.WithCancel(t.Context())
	cancelQueued()
	_, err := b.CreateSession(queued, runRequest("drun_2"))
	re := requireRunError(t, err, sessions.ErrUnknown, fake.APIKey())
	assert.Contains(t, re.Message, "upstream.max_concurrency")

	fake.Release()
	require.NoError(t, <-first)
	assert.Equal(t, 1, fake.SessionsCreated())
}

// A burst far larger than the concurrency bound queues: at most
// MaxConcurrency creations reach the upstream at once, and every call ends
// with exactly one session. 256 calls are sixteen times the bound, so 240
// wait while the upstream holds the first 16 (1,000 only queued more of the
// same, at four times the cost).
func TestBurstIsBoundedAndEveryCallGetsOneSession(t *testing.T) {
	const calls, limit = 256, 16
	fake := newLoopback(t)
	b := newBackend(t, fake, false, func(c *upstream.Config) { c.MaxConcurrency = limit })
	// Hold every creation until the bound is reached, so the test sees the
	// queue at its fullest instead of hoping for a race.
	fake.InjectFault(fakeupstream.RouteCreateSession, -1, fakeupstream.Fault{Hang: true})

	ids := make([]string, calls)
	errs := make([]error, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			req := runRequest(fmt.Sprintf("drun_%04d", i))
			req.InitialEvents = initialEvents[:1]
			ids[i], errs[i] = b.CreateSession(t.Context(), req)
		})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.NoError(t, fake.AwaitHung(ctx, limit))
	assert.Equal(t, limit, b.InFlight())
	assert.Equal(t, limit, fake.CreatesInFlight())

	fake.ClearFaults()
	fake.Release()
	wg.Wait()

	seen := map[string]bool{}
	for i := range calls {
		require.NoError(t, errs[i], "call %d", i)
		assert.False(t, seen[ids[i]], "session %s returned twice", ids[i])
		seen[ids[i]] = true
	}
	assert.Equal(t, calls, fake.SessionsCreated())
	assert.Equal(t, limit, fake.MaxCreatesInFlight(), "the upstream never saw more than MaxConcurrency creations at once")
	assert.Zero(t, b.InFlight())
}
