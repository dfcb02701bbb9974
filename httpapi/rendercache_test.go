package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/httpapi"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/store"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// The rendered-JSON cache must never show a stale deployment: every change
// to the document shows at once, upcoming_runs_at moves on as the clock
// passes its first element, and a cached rendering is byte-for-byte what a
// fresh one is.
func TestRenderCacheNeverServesStaleDeployments(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "test.db"), store.Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	clock := &testClock{t: time.Date(2026, 3, 2, 10, 30, 0, 0, time.UTC)}
	svc := deployments.NewService(deployments.Config{Store: st, Backend: sessionstest.New(map[string]int64{"agent_a": 1}), Now: clock.Now})
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Service: svc}))
	t.Cleanup(srv.Close)

	do := func(method, path, body string) []byte {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = bytes.NewBufferString(body)
		}
		req, err := http.NewRequest(method, srv.URL+path, rd)
		require.NoError(t, err)
		req.Header.Set("anthropic-beta", httpapi.BetaHeader)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode, "%s %s: %s", method, path, data)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		return data
	}
	type wire struct {
		ID       string `json:"id"`
		Name     string `json:"name"`
		Status   string `json:"status"`
		Schedule struct {
			Upcoming []string `json:"upcoming_runs_at"`
		} `json:"schedule"`
	}
	decode := func(b []byte) wire {
		var w wire
		require.NoError(t, json.Unmarshal(b, &w), "%s", b)
		return w
	}
	listed := func() wire {
		var l struct {
			Data     []json.RawMessage `json:"data"`
			NextPage *string           `json:"next_page"`
		}
		require.NoError(t, json.Unmarshal(do("GET", "/v1/deployments", ""), &l))
		require.Len(t, l.Data, 1)
		assert.Nil(t, l.NextPage)
		return decode(l.Data[0])
	}

	created := do("POST", "/v1/deployments", `{"name":"a","agent":"agent_a","environment_id":"env_1",
		"initial_events":[{"type":"user.message","content":[{"type":"text","text":"hi"}]}],
		"schedule":{"type":"cron","expression":"0 * * * *","timezone":"UTC"}}`)
	id := decode(created).ID
	first := do("GET", "/v1/deployments/"+id, "")
	assert.Equal(t, string(created), string(first), "a retrieve renders exactly what create answered")
	assert.Equal(t, string(first), string(do("GET", "/v1/deployments/"+id, "")), "a cached retrieve is the same bytes")
	assert.Equal(t, "2026-03-02T11:00:00Z", decode(first).Schedule.Upcoming[0])

	clock.Set(time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC))
	assert.Equal(t, "2026-03-02T12:00:00Z", decode(do("GET", "/v1/deployments/"+id, "")).Schedule.Upcoming[0],
		"upcoming_runs_at moves on once its first time is no longer in the future")
	assert.Equal(t, "2026-03-02T12:00:00Z", listed().Schedule.Upcoming[0])

	do("POST", "/v1/deployments/"+id, `{"name":"renamed"}`)
	assert.Equal(t, "renamed", decode(do("GET", "/v1/deployments/"+id, "")).Name)
	assert.Equal(t, "renamed", listed().Name)
	do("POST", "/v1/deployments/"+id+"/pause", "")
	assert.Equal(t, "paused", decode(do("GET", "/v1/deployments/"+id, "")).Status)
	assert.Equal(t, "paused", listed().Status)
}
