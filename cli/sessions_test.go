package cli

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/internal/wire"
)

// Wire shapes as the local backend serves them (trimmed to what matters).
const (
	sessionRunning = `{"type":"session","id":"sesn_running","status":"running","agent":{"type":"agent","id":"agent_echo","version":1},
		"environment_id":"env_local","deployment_id":"depl_digest","metadata":{"sandbox0d.deployment_run_id":"drun_digest"},
		"created_at":"2026-11-30T09:58:00Z","updated_at":"2026-11-30T09:59:30Z","archived_at":null,"title":null,
		"usage":{"input_tokens":1200,"output_tokens":340},"stats":{"active_seconds":90.4}}`
	sessionUpstream = `{"type":"session","id":"sesn_upstream","status":"idle","agent":{"type":"agent","id":"agent_review","version":4},
		"environment_id":"env_cloud","metadata":{"sandbox0d.deployment_id":"depl_review","sandbox0d.deployment_run_id":"drun_review"},
		"created_at":"2026-11-30T07:00:00Z","updated_at":"2026-11-30T07:20:00Z","archived_at":null,"title":"Review PR 12",
		"usage":{"input_tokens":0,"output_tokens":0},"stats":{"active_seconds":1200}}`
	sessionArchived = `{"type":"session","id":"sesn_archived","status":"terminated","agent":{"type":"agent","id":"agent_echo","version":1},
		"environment_id":"env_local","deployment_id":null,"metadata":{},
		"created_at":"2026-11-28T10:00:00Z","updated_at":"2026-11-28T10:05:00Z","archived_at":"2026-11-29T10:00:00Z","title":null,
		"usage":{"input_tokens":0,"output_tokens":0},"stats":{"active_seconds":300}}`
)

var sessionEvents = []string{
	`{"id":"sevt_1","type":"user.message","processed_at":"2026-11-30T09:58:00Z","content":[{"type":"text","text":"Summarise\nyesterday"}]}`,
	`{"id":"sevt_2","type":"session.status_running","processed_at":"2026-11-30T09:58:01Z"}`,
	`{"id":"sevt_3","type":"agent.message","processed_at":"2026-11-30T09:58:05Z","content":[{"type":"text","text":"Reading the alerts."}]}`,
	`{"id":"sevt_4","type":"agent.tool_use","processed_at":"2026-11-30T09:58:06Z","name":"bash","input":{"command":"ls"}}`,
	`{"id":"sevt_5","type":"session.error","processed_at":"2026-11-30T09:59:00Z","error":{"type":"unknown_error","message":"the harness exited with status 1"}}`,
}

var streamOnly = []string{
	`{"id":"sevt_6","type":"agent.message","processed_at":"2026-11-30T09:59:10Z","content":[{"type":"text","text":"Done: 3 alerts."}]}`,
	`{"id":"sevt_7","type":"session.status_idle","processed_at":"2026-11-30T09:59:11Z","stop_reason":{"type":"end_turn"}}`,
	`{"id":"sevt_8","type":"agent.message","processed_at":"2026-11-30T09:59:12Z","content":[{"type":"text","text":"never printed: the follow ended"}]}`,
}

// sessionsServer is a fake daemon serving fixed sessions and recording the
// requests that change something.
func sessionsServer(t *testing.T) (string, *[]string) {
	t.Helper()
	var changes []string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/sessions", func(w http.ResponseWriter, r *http.Request) {
		data := []string{sessionRunning, sessionUpstream}
		if r.URL.Query().Get("include_archived") == "true" {
			data = append(data, sessionArchived)
		}
		if r.URL.Query().Get("statuses[]") == "idle" {
			data = []string{sessionUpstream}
		}
		fmt.Fprintf(w, `{"data":[%s],"next_page":null}`, strings.Join(data, ","))
	})
	mux.HandleFunc("GET /v1/sessions/{id}", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("id") {
		case "sesn_running":
			io.WriteString(w, sessionRunning)
		case "sesn_upstream":
			io.WriteString(w, sessionUpstream)
		default:
			wire.WriteError(w, http.StatusNotFound, fmt.Sprintf("session %q was not found", r.PathValue("id")))
		}
	})
	mux.HandleFunc("GET /v1/sessions/{id}/events", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"data":[%s],"next_page":null}`, strings.Join(sessionEvents, ","))
	})
	mux.HandleFunc("GET /v1/sessions/{id}/events/stream", func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "text/event-stream", r.Header.Get("Accept"))
		w.Header().Set("Content-Type", "text/event-stream")
		// The stream replays what the listing showed; the client prints it once.
		for i, ev := range append(append([]string(nil), sessionEvents...), streamOnly...) {
			fmt.Fprintf(w, "id: %d\nevent: x\ndata: %s\n\n: keepalive\n\n", i+1, ev)
		}
	})
	mux.HandleFunc("POST /v1/sessions/{id}/events", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		changes = append(changes, "events "+r.PathValue("id")+" "+string(body))
		io.WriteString(w, `{"data":[]}`)
	})
	mux.HandleFunc("POST /v1/sessions/{id}/archive", func(w http.ResponseWriter, r *http.Request) {
		changes = append(changes, "archive "+r.PathValue("id"))
		io.WriteString(w, strings.Replace(sessionUpstream, `"archived_at":null`, `"archived_at":"2026-11-30T10:00:00Z"`, 1))
	})
	mux.HandleFunc("DELETE /v1/sessions/{id}", func(w http.ResponseWriter, r *http.Request) {
		changes = append(changes, "delete "+r.PathValue("id"))
		fmt.Fprintf(w, `{"id":%q,"type":"session_deleted"}`, r.PathValue("id"))
	})
	return serveUnix(t, mux), &changes
}

func TestSessionsGolden(t *testing.T) {
	socket, changes := sessionsServer(t)
	now := func() time.Time { return mustTime(t, fleetNow) }
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"list", []string{"sessions", "list"}},
		{"list_all", []string{"sessions", "list", "--all"}},
		{"list_idle", []string{"sessions", "list", "--status", "idle"}},
		{"get", []string{"sessions", "get", "sesn_running"}},
		{"get_upstream", []string{"sessions", "get", "sesn_upstream"}},
		{"events", []string{"sessions", "events", "sesn_running"}},
		{"events_follow", []string{"sessions", "events", "sesn_running", "-f"}},
		{"events_json", []string{"--json", "sessions", "events", "sesn_running"}},
		{"send", []string{"sessions", "send", "sesn_running", "Also check the backups"}},
		{"interrupt", []string{"sessions", "interrupt", "sesn_running"}},
		{"archive", []string{"sessions", "archive", "sesn_upstream"}},
		{"delete", []string{"sessions", "delete", "sesn_upstream"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			res := runCLI(t, now, nil, nil, append([]string{"--socket", socket}, tc.args...)...)
			require.NoError(t, res.err)
			assertGolden(t, tc.golden, res.stdout)
		})
	}
	assert.Equal(t, []string{
		`events sesn_running {"events":[{"content":[{"text":"Also check the backups","type":"text"}],"type":"user.message"}]}`,
		`events sesn_running {"events":[{"type":"user.interrupt"}]}`,
		"archive sesn_upstream",
		"delete sesn_upstream",
	}, *changes)

	res := runCLI(t, now, nil, nil, "--socket", socket, "sessions", "get", "sesn_gone")
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), `session "sesn_gone" was not found`)
	res = runCLI(t, now, nil, nil, "--socket", socket, "sessions", "list", "--status", "done")
	require.Error(t, res.err)
	assert.Contains(t, res.err.Error(), "--status")
}
