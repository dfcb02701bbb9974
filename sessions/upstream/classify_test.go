package upstream_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/internal/fakeupstream"
	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/upstream"
)

// Final rows of the classification table, against the fake over loopback:
// either the fake's real answer for a missing or archived object, or an
// injected answer.
func TestFinalClassificationRows(t *testing.T) {
	fault := func(f fakeupstream.Fault) func(*fakeupstream.Server) {
		return func(s *fakeupstream.Server) { s.InjectFault(fakeupstream.RouteCreateSession, 1, f) }
	}
	cases := []struct {
		name   string
		setup  func(*fakeupstream.Server)
		want   sessions.ErrorType
		status string
		also   string // more text the message must hold
	}{
		{"429", fault(fakeupstream.Fault{Status: 429, RetryAfter: "30", Message: "too many sessions"}), sessions.ErrSessionRateLimited, "429", "retry-after 30s"},
		{"401", fault(fakeupstream.Fault{Status: 401, Message: "invalid x-api-key"}), sessions.ErrOrganizationDisabled, "401", "refused the daemon's credentials"},
		{"403", fault(fakeupstream.Fault{Status: 403, Message: "organization disabled"}), sessions.ErrOrganizationDisabled, "403", "upstream.api_key"},
		{"404 environment", func(s *fakeupstream.Server) { s.RemoveEnvironment("env_1") }, sessions.ErrEnvironmentNotFound, "404", "environment env_1 not found"},
		{"404 vault", func(s *fakeupstream.Server) { s.RemoveVault("vlt_2") }, sessions.ErrVaultNotFound, "404", "vault vlt_2"},
		{"404 file", func(s *fakeupstream.Server) { s.RemoveFile("file_1") }, sessions.ErrFileNotFound, "404", "file file_1"},
		{"404 gone agent", func(s *fakeupstream.Server) { s.RemoveAgent("agent_1") }, sessions.ErrAgentArchived, "404", "agent agent_1"},
		{"404 skill", fault(fakeupstream.Fault{Status: 404, Message: "skill skill_pdf referenced by the agent was not found"}), sessions.ErrSkillNotFound, "404", "skill_pdf"},
		{"404 memory store", fault(fakeupstream.Fault{Status: 404, Message: "memstore_1 does not exist"}), sessions.ErrSessionResourceNotFound, "404", "memstore_1"},
		{"404 no envelope", fault(fakeupstream.Fault{Status: 404, Body: "404 page not found"}), sessions.ErrUnknown, "404", "check upstream.url"},
		{"400 archived agent", func(s *fakeupstream.Server) { s.ArchiveAgent("agent_1") }, sessions.ErrAgentArchived, "400", "is archived"},
		{"400 archived environment", func(s *fakeupstream.Server) { s.ArchiveEnvironment("env_1") }, sessions.ErrEnvironmentArchived, "400", "env_1"},
		{"400 archived vault", func(s *fakeupstream.Server) { s.ArchiveVault("vlt_1") }, sessions.ErrVaultArchived, "400", "vlt_1"},
		{"400 archived memory store", func(s *fakeupstream.Server) { s.ArchiveMemoryStore("memstore_1") }, sessions.ErrMemoryStoreArchived, "400", "memstore_1"},
		{"409 archived environment", fault(fakeupstream.Fault{Status: 409, Message: "Environment env_1 has been archived"}), sessions.ErrEnvironmentArchived, "409", "env_1"},
		{"409 archived workspace", fault(fakeupstream.Fault{Status: 409, Message: "the workspace is archived"}), sessions.ErrWorkspaceArchived, "409", "workspace"},
		{"409 archived agent", fault(fakeupstream.Fault{Status: 409, Message: "agent_1 archived"}), sessions.ErrAgentArchived, "409", "agent_1"},
		{"409 archived something unknown", fault(fakeupstream.Fault{Status: 409, Message: "thing archived"}), sessions.ErrSessionCreationRejected, "409", "thing archived"},
		{"400 other", fault(fakeupstream.Fault{Status: 400, Message: "title: too long"}), sessions.ErrSessionCreationRejected, "400", "title: too long"},
		{"422 other", fault(fakeupstream.Fault{Status: 422, Message: "unprocessable"}), sessions.ErrSessionCreationRejected, "422", "unprocessable"},
		{"413", fault(fakeupstream.Fault{Status: 413, Message: "too large"}), sessions.ErrSessionCreationRejected, "413", "too large"},
		{"upstream's own run error type", fault(fakeupstream.Fault{Status: 400, ErrorType: "mcp_egress_blocked_error", Message: "egress to mcp.example blocked"}), sessions.ErrMCPEgressBlocked, "400", "mcp.example"},
		{"400 echoing the token", fault(fakeupstream.Fault{Status: 400, Message: "token " + repoToken + " is malformed"}), sessions.ErrSessionCreationRejected, "400", "token [redacted] is malformed"},
		{"3xx", fault(fakeupstream.Fault{Status: 307, Message: "moved"}), sessions.ErrUnknown, "307", "unexpected answer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := newLoopback(t)
			tc.setup(fake)
			b := newBackend(t, fake, false)

			id, err := b.CreateSession(t.Context(), runRequest("drun_1"))

			assert.Empty(t, id)
			re := requireRunError(t, err, tc.want, fake.APIKey())
			assert.Contains(t, re.Message, "POST /v1/sessions answered "+tc.status)
			assert.Regexp(t, `request-id req_fake_fake\d+`, re.Message)
			assert.Contains(t, re.Message, tc.also)
			assert.Len(t, fake.RequestsTo(fakeupstream.RouteCreateSession), 1, "final answers are not retried")
			assert.Zero(t, fake.SessionsCreated())
		})
	}
}

// Retried rows run inside a synctest bubble against the in-memory fake, so
// backoff, retry-after and timeouts elapse on fake time.
func TestRetriedRowsEndInUnknownErrorWhenTheWindowCloses(t *testing.T) {
	cases := []struct {
		name  string
		fault fakeupstream.Fault
		also  string
	}{
		{"503", fakeupstream.Fault{Status: 503, Message: "overloaded"}, "POST /v1/sessions answered 503 Service Unavailable (request-id req_fake_"},
		{"500", fakeupstream.Fault{Status: 500}, "answered 500"},
		{"408", fakeupstream.Fault{Status: 408}, "answered 408"},
		{"409 not about archival", fakeupstream.Fault{Status: 409, Message: "conflict: try again"}, "answered 409"},
		{"dropped connection", fakeupstream.Fault{Drop: true}, "could not reach the upstream"},
		{"hang", fakeupstream.Fault{Hang: true}, "no answer within 30s (upstream.request_timeout)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fake := newInMemory(t)
				b := newBackend(t, fake, true)
				fake.InjectFault(fakeupstream.RouteCreateSession, -1, tc.fault)
				start := time.Now()

				_, err := b.CreateSession(t.Context(), runRequest("drun_1"))

				re := requireRunError(t, err, sessions.ErrUnknown, fake.APIKey())
				assert.Contains(t, re.Message, "retry window (upstream.retry_window 2m0s)")
				assert.Contains(t, re.Message, tc.also)
				attempts := len(fake.RequestsTo(fakeupstream.RouteCreateSession))
				assert.Greater(t, attempts, 2, "transient failures are retried")
				assert.LessOrEqual(t, time.Since(start), upstream.DefaultRetryWindow+upstream.DefaultRequestTimeout,
					"no attempt starts after the window")
				assert.Zero(t, fake.SessionsCreated())
			})
		})
	}
}

func TestNetworkErrorBeforeConnectingIsRetriedWithoutLookups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		refused := &http.Client{Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
		}}}
		b, err := upstream.New(upstream.Config{URL: "http://upstream.invalid", APIKey: "sk-daemon", HTTPClient: refused})
		require.NoError(t, err)

		_, err = b.CreateSession(t.Context(), runRequest("drun_1"))

		re := requireRunError(t, err, sessions.ErrUnknown, "sk-daemon")
		assert.Contains(t, re.Message, "connection refused")
		assert.Contains(t, re.Message, "retry window")
	})
}

func TestRetryAfterIsHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := newInMemory(t)
		b := newBackend(t, fake, true)
		fake.InjectFault(fakeupstream.RouteCreateSession, 1, fakeupstream.Fault{Status: 503, RetryAfter: "7"})
		start := time.Now()

		id, err := b.CreateSession(t.Context(), runRequest("drun_1"))

		require.NoError(t, err)
		assert.Equal(t, 7*time.Second, time.Since(start), "the retry waited exactly retry-after")
		assert.Equal(t, 1, fake.SessionsCreated())
		_, ok := fake.Session(id)
		assert.True(t, ok)
	})
}

func TestRetryAfterPastTheWindowGivesUpAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := newInMemory(t)
		b := newBackend(t, fake, true)
		fake.InjectFault(fakeupstream.RouteCreateSession, 1, fakeupstream.Fault{Status: 503, RetryAfter: "600"})
		start := time.Now()

		_, err := b.CreateSession(t.Context(), runRequest("drun_1"))

		re := requireRunError(t, err, sessions.ErrUnknown, fake.APIKey())
		assert.Contains(t, re.Message, "asked to retry after 10m0s, past the end of the retry window")
		assert.Zero(t, time.Since(start))
		assert.Len(t, fake.RequestsTo(fakeupstream.RouteCreateSession), 1)
	})
}

func TestShutdownInterruptsRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := newInMemory(t)
		b := newBackend(t, fake, true)
		fake.InjectFault(fakeupstream.RouteCreateSession, -1, fakeupstream.Fault{Status: 503})
		ctx, cancel := context.WithTimeoutCause(t.Context(), 10*time.Second, errors.New("daemon stopping"))
		defer cancel()

		_, err := b.CreateSession(ctx, runRequest("drun_1"))

		re := requireRunError(t, err, sessions.ErrUnknown, fake.APIKey())
		assert.Contains(t, re.Message, "interrupted (daemon stopping)")
		assert.Contains(t, re.Message, "503")
	})
}

// An attempt that fails after the upstream created the session must not
// create a second one, whether the upstream honours Idempotency-Key or not.
func TestRetryAfterAmbiguousFailureCreatesExactlyOneSession(t *testing.T) {
	cases := []struct {
		name     string
		opts     []fakeupstream.Option
		fault    fakeupstream.Fault
		setup    func(*fakeupstream.Server)
		adopted  bool // found by the lookup rather than replayed by key
		lookupOK bool
	}{
		{"500 after commit, key honoured, lookup broken", nil, fakeupstream.Fault{AfterCommit: true, Status: 500},
			func(s *fakeupstream.Server) {
				s.InjectFault(fakeupstream.RouteListSessions, -1, fakeupstream.Fault{Status: 500})
			}, false, false},
		{"500 after commit, key ignored, lookup finds it", []fakeupstream.Option{fakeupstream.IgnoreIdempotencyKeys()},
			fakeupstream.Fault{AfterCommit: true, Status: 500}, nil, true, true},
		{"timeout after commit, key ignored", []fakeupstream.Option{fakeupstream.IgnoreIdempotencyKeys()},
			fakeupstream.Fault{AfterCommit: true, Hang: true}, nil, true, true},
		{"dropped answer after commit, key honoured", nil, fakeupstream.Fault{AfterCommit: true, Drop: true}, nil, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fake := newInMemory(t, tc.opts...)
				b := newBackend(t, fake, true)
				fake.InjectFault(fakeupstream.RouteCreateSession, 1, tc.fault)
				if tc.setup != nil {
					tc.setup(fake)
				}

				id, err := b.CreateSession(t.Context(), runRequest("drun_1"))

				require.NoError(t, err)
				assert.Equal(t, 1, fake.SessionsCreated(), "exactly one session")
				assert.Equal(t, fake.Sessions()[0].ID, id)
				assert.Len(t, fake.Events(id), len(initialEvents), "events delivered once")
				creates := fake.RequestsTo(fakeupstream.RouteCreateSession)
				if tc.adopted {
					assert.Len(t, creates, 1, "the lookup found the session: no second POST")
				} else {
					require.Len(t, creates, 2)
					assert.Equal(t, creates[0].Header.Get("Idempotency-Key"), creates[1].Header.Get("Idempotency-Key"))
				}
				assert.NotEmpty(t, fake.RequestsTo(fakeupstream.RouteListSessions), "an ambiguous failure is checked before resending")
			})
		})
	}
}

func TestAmbiguousEventDeliveryIsNotRepeated(t *testing.T) {
	for _, honourKeys := range []bool{true, false} {
		t.Run(map[bool]string{true: "key honoured", false: "key ignored"}[honourKeys], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var opts []fakeupstream.Option
				if !honourKeys {
					opts = append(opts, fakeupstream.IgnoreIdempotencyKeys())
				}
				fake := newInMemory(t, opts...)
				b := newBackend(t, fake, true)
				fake.InjectFault(fakeupstream.RouteSendEvents, 1, fakeupstream.Fault{AfterCommit: true, Status: 502})

				id, err := b.CreateSession(t.Context(), runRequest("drun_1"))

				require.NoError(t, err)
				assert.Len(t, fake.Events(id), len(initialEvents), "each initial event exactly once")
				assert.Len(t, fake.RequestsTo(fakeupstream.RouteListEvents), 1, "delivery was checked before resending")
			})
		})
	}
}

func TestTransientEventFailureIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := newInMemory(t)
		b := newBackend(t, fake, true)
		fake.InjectFault(fakeupstream.RouteSendEvents, 2, fakeupstream.Fault{Status: 503})

		id, err := b.CreateSession(t.Context(), runRequest("drun_1"))

		require.NoError(t, err)
		assert.Len(t, fake.Events(id), len(initialEvents))
		assert.Len(t, fake.RequestsTo(fakeupstream.RouteSendEvents), 3)
	})
}
