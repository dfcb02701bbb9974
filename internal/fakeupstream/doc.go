// Package fakeupstream is a strict, in-process fake of a Managed Agents HTTP
// API, for tests and benchmarks of anything that talks to a session backend
// upstream (sessions/upstream, the run pipeline, the daemon).
//
// It owns the fake's state (agents with versions, environments, vaults,
// files, memory stores, sessions and their events), the contract checks it
// applies to every request, request recording, fault injection, and the
// in-memory transport used inside testing/synctest bubbles. It must not
// import any sandbox0d package other than internal/wire: it models the
// upstream's wire contract, not the daemon's types.
//
// Strictness: every request is checked against what a real upstream
// requires (x-api-key equal to the configured key and no Authorization
// header, anthropic-beta containing managed-agents-2026-04-01, an
// anthropic-version header, the ?beta=true query parameter, JSON bodies with
// the official shapes). A violation is answered with 400 (401 for a wrong
// key) and an error envelope that says what is wrong, and is recorded; a
// Server created with New fails its test at cleanup if any violation was
// recorded, unless AllowViolations was given.
//
// The official Go SDK's option.WithAPIKey sends "Authorization: Bearer …",
// which the fake refuses like any forwarded client credential; to call the
// fake directly with the SDK use option.WithHeader("X-Api-Key", s.APIKey())
// and option.WithQuery("beta", "true") (the Go SDK keeps that qualifier out
// of the URL).
//
// Typical use:
//
//	fake := fakeupstream.New(t)              // loopback; or NewInMemory inside synctest.Test
//	fake.AddAgent("agent_1", 3)
//	fake.AddEnvironment("env_1")
//	fake.InjectFault(fakeupstream.RouteCreateSession, 2, fakeupstream.Fault{Status: 503, RetryAfter: "1"})
//	… point the code under test at fake.URL with fake.APIKey() (and fake.Client() in memory) …
//	fake.SessionsCreated(), fake.Sessions(), fake.Events(id), fake.RequestsTo(route), fake.MaxCreatesInFlight()
//
// Outside tests (the benchmark harness), NewServer makes a Server that
// fails nothing at cleanup and owns its listener: Start("127.0.0.1:0"),
// Stop to take the upstream down, Start(Addr()) to bring it back.
//
// Responses use the shapes the official Go SDK decodes
// (BetaManagedAgentsSession, BetaManagedAgentsAgent, BetaEnvironment, the
// event union, PageCursor lists, SSE with an `event: <type>` line).
package fakeupstream
