package fakeupstream_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/internal/fakeupstream"
)

func TestStandaloneServerGoesDownAndComesBackOnTheSameAddress(t *testing.T) {
	fake := fakeupstream.NewServer(fakeupstream.WithoutRecording())
	defer fake.Close()
	require.NoError(t, fake.Start("127.0.0.1:0"))
	addr := fake.Addr()
	require.NotEmpty(t, addr)
	assert.Equal(t, "http://"+addr, fake.URL)
	require.Error(t, fake.Start(addr), "a running server cannot start twice")
	seed(fake)

	resp := createRaw(t, fake, sessionBody("agent_1", "env_1"), nil)
	require.Equal(t, 200, resp.StatusCode)
	resp.Body.Close()

	fake.Stop()
	fake.Stop() // idempotent
	_, err := fake.Client().Get(fake.URL + "/v1/sessions?beta=true")
	require.Error(t, err, "nothing listens while the upstream is down")

	require.NoError(t, fake.Start(addr))
	assert.Equal(t, addr, fake.Addr())
	resp = createRaw(t, fake, sessionBody("agent_1", "env_1"), nil)
	require.Equal(t, 200, resp.StatusCode)
	resp.Body.Close()
	assert.Equal(t, 2, fake.SessionsCreated(), "state survives a restart")

	byRun := fake.SessionsByRunID()
	require.Len(t, byRun, 1)
	assert.Len(t, byRun["drun_1"], 2, "both sessions carry the same run id")
}

func TestStandaloneServerRecordsViolationsAndMisuseWithoutATest(t *testing.T) {
	fake := fakeupstream.NewServer()
	require.NoError(t, fake.Start("127.0.0.1:0"))
	seed(fake)
	resp := do(t, fake, "GET", "/v1/agents/agent_1", nil, nil) // no beta=true
	require.Equal(t, 400, resp.StatusCode)
	resp.Body.Close()
	fake.InjectFault("GET /nowhere", 1, fakeupstream.Fault{Status: 500})
	fake.ArchiveVault("vlt_missing")
	fake.Close() // must not panic without a test
	fake.Close()

	v := fake.Violations()
	require.Len(t, v, 3)
	assert.Contains(t, v[0].Problem, "beta=true")
	assert.Contains(t, v[1].Problem, "unknown route")
	assert.Contains(t, v[2].Problem, "never added")
	require.Error(t, fake.Start("127.0.0.1:0"), "a closed server stays closed")
}

func TestStartIsOnlyForStandaloneServers(t *testing.T) {
	fake := fakeupstream.New(t)
	require.Error(t, fake.Start("127.0.0.1:0"))
	assert.Empty(t, fake.Addr())
}

func TestAwaitNoCreatesInFlight(t *testing.T) {
	fake := fakeupstream.New(t)
	seed(fake)
	require.NoError(t, fake.AwaitNoCreatesInFlight(t.Context()), "nothing in flight at the start")
	fake.InjectFault(fakeupstream.RouteCreateSession, 1, fakeupstream.Fault{Hang: true})
	done := make(chan int, 1)
	go func() {
		raw, _ := json.Marshal(sessionBody("agent_1", "env_1"))
		req, _ := http.NewRequest(http.MethodPost, fake.URL+"/v1/sessions?beta=true", bytes.NewReader(raw))
		req.Header = http.Header{"X-Api-Key": {fake.APIKey()}, "Anthropic-Version": {"1"}, "Anthropic-Beta": {fakeupstream.ManagedAgentsBeta}, "Content-Type": {"application/json"}}
		resp, err := fake.Client().Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	require.NoError(t, fake.AwaitHung(t.Context(), 1))
	expired, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, fake.AwaitNoCreatesInFlight(expired), context.Canceled, "a hung creation is in flight")
	fake.Release()
	require.NoError(t, fake.AwaitNoCreatesInFlight(t.Context()))
	assert.Equal(t, 200, <-done)
}
