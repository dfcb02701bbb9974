package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/webhooks"
)

// Template tests: every page renders with no, one and many items, and
// hostile strings (names, metadata, harness output, error messages, URLs)
// come out as text in every context they appear in.

const hostile = `<script>alert("x")</script><img src=x onerror=alert(1)>" onmouseover="alert(2)`

func renderPage(t *testing.T, page string, data any) string {
	t.Helper()
	c := New(Config{})
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/console/", nil)
	c.render(w, r, http.StatusOK, page, "title "+hostile, data)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	return w.Body.String()
}

// assertInert fails when a hostile string reached the page as markup.
func assertInert(t *testing.T, html string) {
	t.Helper()
	assert.NotContains(t, html, `<script>alert`)
	assert.NotContains(t, html, `<img src=x`)
	assert.NotContains(t, html, `" onmouseover="alert`)
	assert.NotContains(t, html, `javascript:`)
}

var now = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func tv(d time.Duration, zone string) *timeView { return newTime(now.Add(d), zone, now) }

func row(i int, name string) deploymentRow {
	return deploymentRow{ID: fmt.Sprintf("depl_%d%s", i, name), Name: name, Description: name, ScheduleWords: cronWords("30 2 * * *"),
		Cron: "30 2 * * *", Zone: "Europe/Berlin", Next: tv(time.Hour, "Europe/Berlin"), State: []string{"active", "paused", "archived"}[i%3],
		PauseReason: name, ManagedBy: name + "/" + name,
		LastRun: &runRow{ID: "drun_" + name, Manual: i%2 == 0, SessionID: "sesn_" + name, ErrorType: map[bool]string{true: name}[i%2 == 1],
			ErrorMsg: name, CreatedAt: tv(-time.Hour, "UTC"), ScheduledAt: tv(-time.Hour, "Europe/Berlin"), Deployment: name, DeployID: "depl_" + name}}
}

func rows(n int, name string) []deploymentRow {
	var out []deploymentRow
	for i := range n {
		out = append(out, row(i, name))
	}
	return out
}

func runs(n int, name string) []runRow {
	var out []runRow
	for i := range n {
		out = append(out, *row(i, name).LastRun)
	}
	return out
}

func deliveries(n int, name string) []deliveryRow {
	var out []deliveryRow
	for i := range n {
		dl := store.WebhookDelivery{Endpoint: "https://hooks.example/" + name, EventID: "wevt_" + name, EventType: name,
			Status: []string{store.DeliveryFailed, store.DeliveryPending, store.DeliveryDelivered}[i%3], AttemptCount: 2,
			Attempts: []store.WebhookAttempt{{At: now, StatusCode: 500, Error: name, Duration: time.Millisecond}}, CreatedAt: now, NextAttemptAt: now, FinishedAt: now}
		r := newDeliveryRow(dl, now)
		r.Back = name
		out = append(out, r)
	}
	return out
}

func events(n int, name string) []eventView {
	long := strings.Repeat(name+"\n", 40)
	raws := []string{
		`{"id":"sevt_1","type":"user.message","processed_at":"2026-12-07T11:00:00Z","content":[{"type":"text","text":%q}]}`,
		`{"id":"sevt_2","type":"agent.message","processed_at":"2026-12-07T11:00:00Z","content":[{"type":"text","text":%q}]}`,
		`{"id":"sevt_3","type":"agent.thinking","processed_at":"2026-12-07T11:00:00Z","thinking":%q}`,
		`{"id":"sevt_4","type":"agent.tool_use","processed_at":"2026-12-07T11:00:00Z","name":"Bash","input":{"command":%q}}`,
		`{"id":"sevt_5","type":"agent.tool_result","processed_at":"2026-12-07T11:00:00Z","tool_use_id":"sevt_4","is_error":true,"content":[{"type":"text","text":%q}]}`,
		`{"id":"sevt_6","type":"session.error","processed_at":"2026-12-07T11:00:00Z","error":{"type":"unknown_error","message":%q}}`,
		`{"id":"sevt_7","type":"session.status_idle","processed_at":"2026-12-07T11:00:00Z","stop_reason":{"type":%q}}`,
		`{"id":"sevt_8","type":"span.outcome_evaluation_start","processed_at":"2026-12-07T11:00:00Z","x":%q}`,
		`{"id":"sevt_9","type":"agent.message","processed_at":"2026-12-07T11:00:00Z","content":[{"type":"text","text":%q}]}`,
	}
	var out []eventView
	for i := range n {
		text := name
		if i%len(raws) == 8 {
			text = long
		}
		raw := fmt.Sprintf(raws[i%len(raws)], text)
		out = append(out, newEventView(json.RawMessage(raw), now))
	}
	return out
}

func TestEveryPageRendersEmptyOneAndMany(t *testing.T) {
	for _, n := range []int{0, 1, 60} {
		for _, name := range []string{"plain-name", hostile} {
			t.Run(fmt.Sprintf("%d/%.10s", n, name), func(t *testing.T) {
				filter := deploymentFilter{}
				if n == 0 && name == hostile {
					filter.Name = name // the empty state with a (hostile) filter
				}
				pages := map[string]any{
					"deployments": deploymentsView{Filter: filter, Rows: rows(n, name), NextURL: "/console/?page=" + name, FirstURL: "/console/", Error: name},
					"deployment": deploymentView{Row: row(1, name), Description: name, Agent: name, Environment: name, InitialEvents: name,
						Resources: []resourceView{{Type: "github_repository", What: name, Checkout: name, Mount: name, TokenSet: true}},
						Vaults:    []string{name}, Metadata: []kv{{name, name}}, Budget: name, Upcoming: []*timeView{tv(time.Hour, "UTC")},
						Runs: runs(n, name), RunsNext: "/console/x?" + name, Error: name, Notice: name, CreatedAt: tv(0, "UTC"), UpdatedAt: tv(0, "UTC")},
					"archive":  struct{ ID, Name string }{name, name},
					"session":  sessionView{Summary: summaryView{ID: name, Status: "running", Live: true, Cost: name, Budget: name, BudgetPct: 5}, Title: name, Agent: name, Environment: name, Node: name, Deployment: name, Metadata: []kv{{name, name}}, Events: events(n, name), StreamURL: "/console/sessions/x/stream?after=" + name, Error: name, Notice: name},
					"sessions": sessionsView{Sessions: sessionRows(n, name), ShowNode: true, Next: "/console/sessions?page=" + name, First: "/console/sessions", Error: name},
					"nodes":    nodesViewOf(clusterStatus(n, name), clusterLoads(n, name), now),
					"failures": failuresView{Runs: runs(n, name), Deliveries: deliveries(n, name), Error: name, Notice: name},
					"webhooks": webhooksView{Endpoints: endpoints(n, name), Outbox: n, Deliveries: deliveries(n, name), Error: name},
					"signin":   signinView{Next: name, Error: name, Notice: name},
					"error":    errorView{Status: 404, Message: name},
				}
				require.Len(t, pages, len(pageNames))
				for page, data := range pages {
					html := renderPage(t, page, data)
					assertInert(t, html)
					if name == hostile {
						assert.Contains(t, html, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;", page+": the hostile string is shown, as text")
					}
				}
			})
		}
	}
}

func sessionRows(n int, name string) []sessionRow {
	var out []sessionRow
	for i := range n {
		out = append(out, sessionRow{ID: "sesn_" + name, Title: name, Status: []string{"running", "idle", "terminated"}[i%3],
			Agent: name + " v1", Deployment: name, Node: name, Environment: name, CreatedAt: tv(-time.Hour, "UTC"), ArchivedAt: tv(0, "UTC")})
	}
	return out
}

func clusterStatus(n int, name string) store.Status {
	st := store.Status{Node: name + "0", Leader: name + "0",
		Endpoints: []store.Endpoint{{URL: "http://127.0.0.1:2379/" + name, Healthy: false, Error: name}}}
	for i := range n {
		st.Nodes = append(st.Nodes, store.NodeInfo{Name: fmt.Sprintf("%s%d", name, i), AdvertiseURL: "https://" + name, Since: now.Add(-time.Duration(i+1) * time.Minute)})
	}
	return st
}

func clusterLoads(n int, name string) []store.NodeLoad {
	var out []store.NodeLoad
	for i := range n {
		if i%4 != 3 { // some nodes have not published their load yet
			out = append(out, store.NodeLoad{Node: fmt.Sprintf("%s%d", name, i), FreeSlots: i, Running: 2, DiskFree: 3 << 30, Cordoned: i%2 == 1})
		}
	}
	return out
}

func endpoints(n int, name string) []webhooks.EndpointStatus {
	var out []webhooks.EndpointStatus
	for range n {
		out = append(out, webhooks.EndpointStatus{URL: "https://hooks.example/" + name, Events: []string{name}, Keys: 1, Pending: 2, Failed: 1})
	}
	return out
}

// Empty states say what to do; counts of many rows all render.
func TestEmptyStatesAndCounts(t *testing.T) {
	html := renderPage(t, "deployments", deploymentsView{})
	assert.Contains(t, html, "No deployments yet.")
	assert.Contains(t, html, "sandbox0d deployments create -f")
	html = renderPage(t, "deployments", deploymentsView{Rows: rows(60, "x")})
	assert.Equal(t, 60, strings.Count(html, `<tr>`)-1, "60 rows and the header")
	html = renderPage(t, "failures", failuresView{})
	assert.Contains(t, html, "No failed runs.")
	assert.Contains(t, html, "No failed webhook deliveries.")
	html = renderPage(t, "webhooks", webhooksView{})
	assert.Contains(t, html, "No webhook endpoints configured.")
	html = renderPage(t, "session", sessionView{Summary: summaryView{ID: "sesn_x", Status: "idle", BudgetPct: -1}})
	assert.Contains(t, html, "No events yet")
	assert.NotContains(t, html, "data-stream", "an idle session's page does not follow the stream")
	assert.NotContains(t, html, `id="node"`, "one box: no node row")
	html = renderPage(t, "session", sessionView{Summary: summaryView{ID: "sesn_x", Status: "idle"}, Node: "node-b"})
	assert.Contains(t, html, `<code id="node">node-b</code>`, "cluster mode: the node that runs the session")
	html = renderPage(t, "session", sessionView{NoBackend: true})
	assert.Contains(t, html, "serves no sessions")
	html = renderPage(t, "sessions", sessionsView{})
	assert.Contains(t, html, "No sessions yet")
	html = renderPage(t, "sessions", sessionsView{Sessions: sessionRows(3, "x")})
	assert.NotContains(t, html, `class="node"`, "one box: no node column")
	html = renderPage(t, "sessions", sessionsView{Sessions: sessionRows(3, "x"), ShowNode: true})
	assert.Equal(t, 3, strings.Count(html, `<td data-label="Node" class="node"><code>x</code></td>`))
	html = renderPage(t, "nodes", nodesViewOf(store.Status{}, nil, now))
	assert.Contains(t, html, "No node holds a lease right now")
	assert.Contains(t, html, "no leader")
	html = renderPage(t, "nodes", nodesViewOf(clusterStatus(4, "n"), clusterLoads(4, "n"), now))
	assert.Contains(t, html, "Leader: <strong><code>n0</code></strong>")
	assert.Equal(t, 1, strings.Count(html, "★ leader"))
	assert.Equal(t, 3, strings.Count(html, ">follower<"))
	assert.Equal(t, 1, strings.Count(html, "(this node)"))
	assert.Equal(t, 1, strings.Count(html, "‖ cordoned"), "n1 is cordoned (n3 published no load)")
	assert.Contains(t, html, "not published yet")
	assert.Contains(t, html, "3.0 GiB")
	assert.Contains(t, html, "4 min 0 s", "n3's lease age")
	html = renderPage(t, "deployment", deploymentView{Row: deploymentRow{ID: "depl_x", Name: "x", State: "active"}})
	assert.Contains(t, html, "No schedule: it runs only when started by hand")
	assert.Contains(t, html, "No runs yet.")
}

// Long tool input and output are folded; short ones are not.
func TestLongEventsAreFolded(t *testing.T) {
	ev := events(9, "x")
	assert.False(t, ev[3].Fold, "a short tool input")
	assert.True(t, ev[8].Fold, "40 lines")
	assert.Equal(t, "Tool use: Bash", ev[3].Label)
	assert.Contains(t, ev[3].Detail, `"command": "x"`)
	assert.True(t, ev[4].IsError)
	assert.Equal(t, "unknown_error: x", ev[5].Text)
	assert.Contains(t, ev[6].Text, "stop reason: x")
	html := renderPage(t, "session", sessionView{Summary: summaryView{ID: "s", Status: "idle"}, Events: ev})
	assert.Equal(t, 1, strings.Count(html, "<details><summary>"), "one folded event")
}

func TestCronWords(t *testing.T) {
	for expr, want := range map[string]string{
		"30 2 * * *":     "at 02:30, every day",
		"0 9 * * 1-5":    "at 09:00, on weekdays (Monday to Friday)",
		"*/15 * * * *":   "every 15 minutes, every day",
		"5 * * * *":      "every hour at minute 5, every day",
		"0 9,17 * * *":   "at 09:00, 17:00, every day",
		"0 0 1 * *":      "at 00:00, on day 1 of every month",
		"0 8 * * 0,3":    "at 08:00, on Sunday, Wednesday",
		"0 0 1 1 *":      "custom schedule",
		"0 0 13 * 5":     "custom schedule",
		"* * * * *":      "every minute, every day",
		"0 */2 * * *":    "every 2 hours at minute 0, every day",
		"not a schedule": "custom schedule",
	} {
		assert.Equal(t, want, cronWords(expr), expr)
	}
}

func TestRelativeTimes(t *testing.T) {
	for d, want := range map[time.Duration]string{
		10 * time.Second: "just now", 5 * time.Minute: "in 5 min", -5 * time.Minute: "5 min ago",
		3*time.Hour + 20*time.Minute: "in 3 h 20 min", 26 * time.Hour: "in 1 d 2 h", -40 * 24 * time.Hour: "40 d ago",
	} {
		assert.Equal(t, want, relative(now.Add(d), now), d.String())
	}
	v := newTime(time.Date(2026, 7, 1, 7, 0, 0, 0, time.UTC), "Europe/Berlin", now)
	assert.Equal(t, "Wed 2026-07-01 09:00 CEST", v.InZone)
	assert.Equal(t, "Europe/Berlin", v.Zone)
	assert.Equal(t, "2026-07-01T07:00:00Z", v.ISO)
}

func TestLeaseAgeAndBytes(t *testing.T) {
	assert.Equal(t, "0 s", leaseAge(-time.Second))
	assert.Equal(t, "59 s", leaseAge(59*time.Second))
	assert.Equal(t, "2 min 5 s", leaseAge(125*time.Second))
	assert.Equal(t, "3 h 7 min", leaseAge(3*time.Hour+7*time.Minute))
	assert.Equal(t, "2 d 1 h", leaseAge(49*time.Hour))
	assert.Equal(t, "512 B", bytesText(512))
	assert.Equal(t, "1.5 KiB", bytesText(1536))
	assert.Equal(t, "3.0 GiB", bytesText(3<<30))
}
