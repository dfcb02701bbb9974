package upstream_test

import (
	"errors"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/internal/fakeupstream"
	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/upstream"
)

func TestResolveAgent(t *testing.T) {
	cases := []struct {
		name      string
		setup     func(*fakeupstream.Server)
		agentID   string
		version   int64
		want      sessions.AgentRef
		notFound  *sessions.NotFoundError
		wantQuery string // the version query the upstream saw
	}{
		{name: "latest version", agentID: "agent_1", want: sessions.AgentRef{ID: "agent_1", Version: 3}},
		{name: "explicit version", agentID: "agent_1", version: 2, want: sessions.AgentRef{ID: "agent_1", Version: 2}, wantQuery: "2"},
		{name: "missing agent", agentID: "agent_404", notFound: &sessions.NotFoundError{Field: "agent", ID: "agent_404"}},
		{name: "missing agent, explicit version", agentID: "agent_404", version: 1, notFound: &sessions.NotFoundError{Field: "agent", ID: "agent_404"}, wantQuery: "1"},
		{name: "missing version", agentID: "agent_1", version: 9, notFound: &sessions.NotFoundError{Field: "agent.version", ID: "9"}, wantQuery: "9"},
		{name: "archived", setup: func(s *fakeupstream.Server) { s.ArchiveAgent("agent_1") }, agentID: "agent_1",
			notFound: &sessions.NotFoundError{Field: "agent", ID: "agent_1", Archived: true}},
		{name: "archived, explicit version", setup: func(s *fakeupstream.Server) { s.ArchiveAgent("agent_1") }, agentID: "agent_1", version: 1,
			notFound: &sessions.NotFoundError{Field: "agent", ID: "agent_1", Archived: true}, wantQuery: "1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := newLoopback(t)
			if tc.setup != nil {
				tc.setup(fake)
			}
			b := newBackend(t, fake, false)

			got, err := b.ResolveAgent(t.Context(), tc.agentID, tc.version)

			if tc.notFound != nil {
				var nf *sessions.NotFoundError
				require.ErrorAs(t, err, &nf)
				assert.Equal(t, tc.notFound, nf)
				assert.NotErrorIs(t, err, sessions.ErrUnavailable)
			} else {
				require.NoError(t, err)
				assert.Equal(t, tc.want, got)
			}
			reqs := fake.RequestsTo(fakeupstream.RouteGetAgent)
			require.NotEmpty(t, reqs)
			assert.Equal(t, "/v1/agents/"+tc.agentID, reqs[0].Path)
			assert.Equal(t, tc.wantQuery, reqs[0].Query.Get("version"))
		})
	}
}

func TestResolveAgentWhenTheUpstreamCannotAnswer(t *testing.T) {
	t.Run("nothing listening", func(t *testing.T) {
		b, err := upstream.New(upstream.Config{URL: closedURL(t), APIKey: "sk-daemon"})
		require.NoError(t, err)
		_, err = b.ResolveAgent(t.Context(), "agent_1", 0)
		require.ErrorIs(t, err, sessions.ErrUnavailable)
		assert.Contains(t, err.Error(), "the session backend could not be reached")
		assert.Contains(t, err.Error(), "GET /v1/agents/agent_1")
		assert.NotContains(t, err.Error(), "sk-daemon")
	})
	for _, tc := range []struct {
		name   string
		fault  fakeupstream.Fault
		expect string
	}{
		{"503", fakeupstream.Fault{Status: 503}, "answered 503 Service Unavailable (request-id req_fake_"},
		{"429", fakeupstream.Fault{Status: 429}, "answered 429"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := newLoopback(t)
			fake.InjectFault(fakeupstream.RouteGetAgent, 1, tc.fault)
			b := newBackend(t, fake, false)
			_, err := b.ResolveAgent(t.Context(), "agent_1", 0)
			require.ErrorIs(t, err, sessions.ErrUnavailable)
			assert.Contains(t, err.Error(), tc.expect)
		})
	}
	// Issue 12 point 6: an upstream that answered is not "unreachable".
	for _, status := range []int{401, 403} {
		t.Run(fmt.Sprintf("%d is the daemon's key, not an outage", status), func(t *testing.T) {
			fake := newLoopback(t)
			fake.InjectFault(fakeupstream.RouteGetAgent, 1, fakeupstream.Fault{Status: status})
			b := newBackend(t, fake, false)
			_, err := b.ResolveAgent(t.Context(), "agent_1", 0)
			require.ErrorIs(t, err, sessions.ErrRefused)
			assert.NotErrorIs(t, err, sessions.ErrUnavailable)
			assert.Contains(t, err.Error(), "the upstream refused the daemon's credentials (check upstream.api_key)")
			assert.NotContains(t, err.Error(), "could not be reached")
			assert.NotContains(t, err.Error(), fake.APIKey())
		})
	}
	for _, msg := range []string{"invalid agent id: nope", "bad header"} {
		t.Run("400 is the upstream rejecting the id: "+msg, func(t *testing.T) {
			fake := newLoopback(t)
			fake.InjectFault(fakeupstream.RouteGetAgent, 1, fakeupstream.Fault{Status: 400, Message: msg})
			b := newBackend(t, fake, false)
			_, err := b.ResolveAgent(t.Context(), "nope", 0)
			var fe *sessions.FieldError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, "agent", fe.Field)
			assert.Contains(t, fe.Message, `the upstream rejected "nope"`)
			assert.Contains(t, fe.Message, msg)
			assert.NotErrorIs(t, err, sessions.ErrUnavailable)
		})
	}
	t.Run("timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fake := newInMemory(t)
			fake.InjectFault(fakeupstream.RouteGetAgent, 1, fakeupstream.Fault{Hang: true})
			b := newBackend(t, fake, true)
			_, err := b.ResolveAgent(t.Context(), "agent_1", 0)
			require.ErrorIs(t, err, sessions.ErrUnavailable)
			assert.Contains(t, err.Error(), "no answer within 30s (upstream.request_timeout)")
			assert.Len(t, fake.RequestsTo(fakeupstream.RouteGetAgent), 1, "lookups are not retried")
		})
	})
}

func TestCheckReferences(t *testing.T) {
	refs := sessions.References{
		Agent:          sessions.AgentRef{ID: "agent_1", Version: 2},
		EnvironmentID:  "env_1",
		VaultIDs:       []string{"vlt_1", "vlt_2"},
		FileIDs:        []string{"file_1"},
		MemoryStoreIDs: []string{"memstore_1"},
	}
	cases := []struct {
		name  string
		setup func(*fakeupstream.Server)
		want  *sessions.NotFoundError
	}{
		{name: "all present"},
		{name: "missing environment", setup: func(s *fakeupstream.Server) { s.RemoveEnvironment("env_1") }, want: &sessions.NotFoundError{Field: "environment_id", ID: "env_1"}},
		{name: "archived environment", setup: func(s *fakeupstream.Server) { s.ArchiveEnvironment("env_1") }, want: &sessions.NotFoundError{Field: "environment_id", ID: "env_1", Archived: true}},
		{name: "missing second vault", setup: func(s *fakeupstream.Server) { s.RemoveVault("vlt_2") }, want: &sessions.NotFoundError{Field: "vault_ids[1]", ID: "vlt_2"}},
		{name: "archived vault", setup: func(s *fakeupstream.Server) { s.ArchiveVault("vlt_1") }, want: &sessions.NotFoundError{Field: "vault_ids[0]", ID: "vlt_1", Archived: true}},
		{name: "missing file", setup: func(s *fakeupstream.Server) { s.RemoveFile("file_1") }, want: &sessions.NotFoundError{Field: "file_id", ID: "file_1"}},
		{name: "archived agent", setup: func(s *fakeupstream.Server) { s.ArchiveAgent("agent_1") }, want: &sessions.NotFoundError{Field: "agent", ID: "agent_1", Archived: true}},
		{name: "missing memory store", setup: func(s *fakeupstream.Server) { s.RemoveMemoryStore("memstore_1") }, want: &sessions.NotFoundError{Field: "memory_store_id", ID: "memstore_1"}},
		{name: "archived memory store", setup: func(s *fakeupstream.Server) { s.ArchiveMemoryStore("memstore_1") }, want: &sessions.NotFoundError{Field: "memory_store_id", ID: "memstore_1", Archived: true}},
		{name: "first problem in field order wins", setup: func(s *fakeupstream.Server) {
			s.RemoveFile("file_1")
			s.RemoveEnvironment("env_1")
		}, want: &sessions.NotFoundError{Field: "environment_id", ID: "env_1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := newLoopback(t)
			if tc.setup != nil {
				tc.setup(fake)
			}
			b := newBackend(t, fake, false)
			err := b.CheckReferences(t.Context(), refs)
			if tc.want == nil {
				require.NoError(t, err)
				assert.Len(t, fake.Requests(), 7, "agent version and agent, environment, two vaults, one file, one memory store")
				for _, r := range fake.RequestsTo(fakeupstream.RouteGetFile) {
					assert.Equal(t, fakeupstream.FilesBeta, r.Header.Get("anthropic-beta"), "the Files API needs its own beta")
				}
				return
			}
			var nf *sessions.NotFoundError
			require.ErrorAs(t, err, &nf)
			assert.Equal(t, tc.want, nf)
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		b, err := upstream.New(upstream.Config{URL: closedURL(t), APIKey: "sk-daemon"})
		require.NoError(t, err)
		err = b.CheckReferences(t.Context(), refs)
		require.ErrorIs(t, err, sessions.ErrUnavailable)
		var nf *sessions.NotFoundError
		assert.False(t, errors.As(err, &nf))
	})
}
