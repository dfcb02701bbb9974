package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/schedule/tzdb"
	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/webhooks"
)

// rowText is the text of the deployments-table row linking to id.
func rowText(t *testing.T, b context.Context, id string) string {
	t.Helper()
	return eval[string](t, b, fmt.Sprintf(`document.querySelector('a[href="/console/deployments/%s"]').closest('tr').innerText`, id))
}

func bodyHas(s string) string {
	q, _ := json.Marshal(s)
	return "document.body.innerText.includes(" + string(q) + ")"
}

// The deployments page lists what the API created, each with the next
// run the API reports, in the deployment's zone; pause reasons, manual-only
// schedules, last runs and the filters show.
func TestBrowserDeploymentsPage(t *testing.T) {
	r := startRig(t, rigConfig(t), daemon.Options{})
	c, ctx := r.client(), t.Context()
	digest, err := c.Beta.Deployments.New(ctx, deploymentParams("nightly-digest", "agent_a", "30 2 * * *", "America/New_York"))
	require.NoError(t, err)
	weekly, err := c.Beta.Deployments.New(ctx, deploymentParams("weekly-report", "agent_a", "0 9 * * 1", "Europe/Berlin"))
	require.NoError(t, err)
	manual, err := c.Beta.Deployments.New(ctx, deploymentParams("manual-only", "agent_a", "", ""))
	require.NoError(t, err)
	_, err = c.Beta.Deployments.Pause(ctx, weekly.ID, anthropic.BetaDeploymentPauseParams{})
	require.NoError(t, err)
	run, err := c.Beta.Deployments.Run(ctx, digest.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	require.NotEmpty(t, run.SessionID)

	b := tab(t)
	require.NoError(t, chromedp.Do(b, chromedp.Navigate(r.sockURL+"/console/"), chromedp.WaitVisible(chromedp.CSS("table.deployments"))))

	ny, err := tzdb.Load("America/New_York")
	require.NoError(t, err)
	next := digest.Schedule.UpcomingRunsAt[0].In(ny).Format("Mon 2006-01-02 15:04 MST")
	row := rowText(t, b, digest.ID)
	assert.Contains(t, row, "nightly-digest")
	assert.Contains(t, row, "at 02:30, every day")
	assert.Contains(t, row, "30 2 * * *")
	assert.Contains(t, row, next, "the next run is the API's upcoming_runs_at[0] in the deployment's zone")
	assert.Contains(t, row, "America/New_York")
	assert.Contains(t, row, "✓ session")
	assert.Contains(t, row, run.SessionID)
	assert.Contains(t, row, "manual")

	row = rowText(t, b, weekly.ID)
	assert.Contains(t, row, "paused")
	assert.Contains(t, row, "paused by an operator")
	assert.Contains(t, row, "none while paused")

	row = rowText(t, b, manual.ID)
	assert.Contains(t, row, "manual only")
	assert.Contains(t, row, "never run")

	// The relative time was filled in by the script ("in 5 h 10 min").
	assert.True(t, eval[bool](t, b, `[...document.querySelectorAll('.rel')].some(e => e.textContent.startsWith('in '))`))
	screenshot(t, b, "deployments")

	// Keyboard: Tab from the top reaches the skip link, then the navigation.
	require.NoError(t, chromedp.Do(b, chromedp.KeyEvent("\t")))
	assert.Equal(t, "Skip to content", eval[string](t, b, `document.activeElement.innerText`))

	// A phone: the table becomes labelled cards, nothing scrolls sideways.
	require.NoError(t, chromedp.Do(b, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("table.deployments"))))
	assert.LessOrEqual(t, eval[int](t, b, `document.documentElement.scrollWidth`), 390, "no horizontal scrolling on a phone")
	assert.Equal(t, "block", eval[string](t, b, `getComputedStyle(document.querySelector('table.deployments td')).display`))
	screenshot(t, b, "deployments-phone")
	require.NoError(t, chromedp.Do(b, chromedp.EmulateReset()))

	// Filters: name contains, paused.
	require.NoError(t, chromedp.Do(b, chromedp.Navigate(r.sockURL+"/console/?name=DIGEST"), chromedp.WaitVisible(chromedp.CSS("table.deployments"))))
	assert.Equal(t, 1, eval[int](t, b, `document.querySelectorAll('table.deployments tbody tr').length`))
	require.NoError(t, chromedp.Do(b, chromedp.Navigate(r.sockURL+"/console/?state=paused"), chromedp.WaitVisible(chromedp.CSS("table.deployments"))))
	assert.Equal(t, 1, eval[int](t, b, `document.querySelectorAll('table.deployments tbody tr').length`))
	assert.Contains(t, rowText(t, b, weekly.ID), "weekly-report")
	require.NoError(t, chromedp.Do(b, chromedp.Navigate(r.sockURL+"/console/?name=nothing-like-this"), chromedp.WaitVisible(chromedp.CSS("p.empty"))))
	assert.Contains(t, text(t, b, "p.empty"), "No deployment matches these filters")
}

// click clicks a button that submits a form and waits for the page it
// leads to (cond holds there).
func click(t *testing.T, b context.Context, id, cond string) {
	t.Helper()
	require.NoError(t, chromedp.Do(b, chromedp.Click(chromedp.ID(id))), "clicking #%s", id)
	waitFor(t, b, cond)
}

// Pause, Unpause, Run now and Archive (after a confirmation that names the
// deployment) by clicking; the API sees each change. A refused action
// shows the API's own message.
func TestBrowserDeploymentActions(t *testing.T) {
	r := startRig(t, rigConfig(t), daemon.Options{})
	c, ctx := r.client(), t.Context()
	d, err := c.Beta.Deployments.New(ctx, deploymentParams("nightly-digest", "agent_a", "30 2 * * *", "America/New_York"))
	require.NoError(t, err)
	b := tab(t)
	require.NoError(t, chromedp.Do(b, chromedp.Navigate(r.sockURL+"/console/deployments/"+d.ID), chromedp.WaitVisible(chromedp.ID("pause"))))
	// The next five fire times, as the API lists them.
	ny, _ := tzdb.Load("America/New_York")
	assert.Equal(t, 5, eval[int](t, b, `document.querySelectorAll('ol.upcoming li').length`))
	for _, at := range d.Schedule.UpcomingRunsAt {
		waitFor(t, b, bodyHas(at.In(ny).Format("Mon 2006-01-02 15:04 MST")))
	}

	click(t, b, "pause", bodyHas("Paused: no scheduled run fires"))
	got, err := c.Beta.Deployments.Get(ctx, d.ID, anthropic.BetaDeploymentGetParams{})
	require.NoError(t, err)
	assert.Equal(t, "paused", string(got.Status))
	assert.Equal(t, "manual", string(got.PausedReason.Type))

	click(t, b, "run-now", bodyHas("Run started"))
	runs, err := c.Beta.DeploymentRuns.List(ctx, anthropic.BetaDeploymentRunListParams{DeploymentID: anthropic.String(d.ID)})
	require.NoError(t, err)
	require.Len(t, runs.Data, 1)
	assert.Equal(t, "manual", string(runs.Data[0].TriggerContext.Type))
	require.NotEmpty(t, runs.Data[0].SessionID)
	row := eval[string](t, b, `document.querySelector('table.runs tbody tr').innerText`)
	assert.Contains(t, row, runs.Data[0].ID)
	assert.Contains(t, row, "manual")
	assert.Contains(t, row, runs.Data[0].SessionID)
	screenshot(t, b, "deployment")

	click(t, b, "unpause", bodyHas("Unpaused"))
	got, err = c.Beta.Deployments.Get(ctx, d.ID, anthropic.BetaDeploymentGetParams{})
	require.NoError(t, err)
	assert.Equal(t, "active", string(got.Status))

	// Archive asks first, naming the deployment.
	click(t, b, "archive", bodyHas(`Archive “nightly-digest”?`))
	assert.Contains(t, text(t, b, "#confirm-archive"), "nightly-digest")
	screenshot(t, b, "archive")
	got, err = c.Beta.Deployments.Get(ctx, d.ID, anthropic.BetaDeploymentGetParams{})
	require.NoError(t, err)
	assert.True(t, got.ArchivedAt.IsZero(), "nothing is archived before the confirmation")
	click(t, b, "confirm-archive", bodyHas("Archived: it no longer fires"))
	got, err = c.Beta.Deployments.Get(ctx, d.ID, anthropic.BetaDeploymentGetParams{})
	require.NoError(t, err)
	assert.False(t, got.ArchivedAt.IsZero())

	// A page opened before someone else archived it: Pause is refused with
	// the API's message.
	d2, err := c.Beta.Deployments.New(ctx, deploymentParams("second", "agent_a", "", ""))
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(b, chromedp.Navigate(r.sockURL+"/console/deployments/"+d2.ID), chromedp.WaitVisible(chromedp.ID("pause"))))
	_, err = c.Beta.Deployments.Archive(ctx, d2.ID, anthropic.BetaDeploymentArchiveParams{})
	require.NoError(t, err)
	_, apiErr := c.Beta.Deployments.Pause(ctx, d2.ID, anthropic.BetaDeploymentPauseParams{})
	var ae *anthropic.Error
	require.ErrorAs(t, apiErr, &ae)
	var env struct {
		Error struct{ Message string } `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(ae.RawJSON()), &env))
	require.NotEmpty(t, env.Error.Message)
	click(t, b, "pause", `document.querySelector('.banner.error') !== null`)
	assert.Contains(t, text(t, b, ".banner.error"), env.Error.Message)
}

// waitScript is a command harness that prints a line, waits for a file,
// prints another. Its first line carries HTML and script, which the page
// must show as text.
const waitScript = `cat >/dev/null
printf '%s\n' 'first <b>line</b><script>document.title="pwned"</script><img src=x onerror=alert(1)>'
while [ ! -e "$WAIT_FILE" ]; do sleep 0.05; done
echo "second line"`

// The session page shows a harness's events as they are printed: the
// first line, then (after the file appears) the second, without a reload,
// each once, and it stops following when the session idles. Send and
// Interrupt go through the session backend like the API's.
func TestBrowserSessionTranscriptIsLive(t *testing.T) {
	cfg := rigConfig(t)
	waitFile := filepath.Join(t.TempDir(), "go-on")
	cfg.Local.Agents = append(cfg.Local.Agents, daemon.LocalAgent{ID: "agent_wait", Version: 1,
		Command: []string{"/bin/sh", "-c", waitScript}, Env: map[string]string{"WAIT_FILE": waitFile}})
	r := startRig(t, cfg, daemon.Options{})
	c, ctx := r.client(), t.Context()
	d, err := c.Beta.Deployments.New(ctx, deploymentParams("live <i>transcript</i>", "agent_wait", "", ""))
	require.NoError(t, err)
	run, err := c.Beta.Deployments.Run(ctx, d.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	require.NotEmpty(t, run.SessionID, "run error: %+v", run.Error)
	sid := run.SessionID
	require.Eventually(t, func() bool {
		s, err := c.Beta.Sessions.Get(ctx, sid, anthropic.BetaSessionGetParams{})
		return err == nil && s.Status == "running"
	}, 20*time.Second, 20*time.Millisecond, "the harness's turn starts")

	b := tab(t)
	require.NoError(t, chromedp.Do(b, chromedp.Navigate(r.sockURL+"/console/sessions/"+sid), chromedp.WaitVisible(chromedp.ID("transcript"))))
	assert.True(t, eval[bool](t, b, `!!document.getElementById('transcript').dataset.stream`), "a running session's page follows the stream")
	waitFor(t, b, bodyHas(`first <b>line</b><script>document.title="pwned"</script>`))
	eval[bool](t, b, `window.sameDocument = true`)
	assert.False(t, eval[bool](t, b, bodyHas("second line")))

	require.NoError(t, os.WriteFile(waitFile, nil, 0o644))
	waitFor(t, b, bodyHas("second line"))
	waitFor(t, b, `document.getElementById('summary').dataset.status === 'idle'`)
	assert.True(t, eval[bool](t, b, `window.sameDocument === true`), "the second line arrived live, not by a reload")
	assert.Contains(t, text(t, b, "#stream-state"), "The turn is over")

	// Hostile output is text: no element from it, no script run.
	assert.Equal(t, 0, eval[int](t, b, `document.querySelectorAll('#transcript b, #transcript script, #transcript img').length`))
	assert.NotEqual(t, "pwned", eval[string](t, b, `document.title`))

	// No gap, no duplicate: the page holds the API's events, once each.
	pageIDs := eval[[]string](t, b, `[...document.querySelectorAll('#transcript [data-id]')].map(e => e.dataset.id)`)
	events, err := c.Beta.Sessions.Events.List(ctx, sid, anthropic.BetaSessionEventListParams{Limit: anthropic.Int(1000)})
	require.NoError(t, err)
	var apiIDs []string
	for _, ev := range events.Data {
		apiIDs = append(apiIDs, ev.ID)
	}
	assert.Equal(t, apiIDs, pageIDs)
	screenshot(t, b, "session")

	// Send a message from the page: a second turn (the file is there now).
	require.NoError(t, chromedp.Do(b, chromedp.SendKeys(chromedp.ID("message"), "once more, <please>")))
	click(t, b, "send", `document.querySelectorAll('#transcript .ev-agent').length >= 4 && document.getElementById('summary').dataset.status === 'idle'`)
	events, err = c.Beta.Sessions.Events.List(ctx, sid, anthropic.BetaSessionEventListParams{Limit: anthropic.Int(1000)})
	require.NoError(t, err)
	var sent bool
	for _, ev := range events.Data {
		if ev.Type == "user.message" && strings.Contains(ev.RawJSON(), "once more, \\u003cplease\\u003e") || strings.Contains(ev.RawJSON(), "once more, <please>") {
			sent = true
		}
	}
	assert.True(t, sent, "the API lists the message sent from the page")

	// Interrupt a running turn from the page.
	require.NoError(t, os.Remove(waitFile))
	_, err = c.Beta.Sessions.Events.Send(ctx, sid, anthropic.BetaSessionEventSendParams{Events: []anthropic.BetaManagedAgentsEventParamsUnion{{
		OfUserMessage: &anthropic.BetaManagedAgentsUserMessageEventParams{Content: []anthropic.BetaManagedAgentsUserMessageEventParamsContentUnion{
			{OfText: &anthropic.BetaManagedAgentsTextBlockParam{Text: "third"}}}}}}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		s, err := c.Beta.Sessions.Get(ctx, sid, anthropic.BetaSessionGetParams{})
		return err == nil && s.Status == "running"
	}, 20*time.Second, 20*time.Millisecond)
	require.NoError(t, chromedp.Do(b, chromedp.Navigate(r.sockURL+"/console/sessions/"+sid), chromedp.WaitVisible(chromedp.ID("interrupt"))))
	// The element's own click(), not a mouse click at its coordinates:
	// the live transcript scrolls the page to its end when an event
	// arrives, which can move the button between chromedp's aim and its
	// click (seen once in CI: the page never left the session).
	assert.True(t, eval[bool](t, b, `(document.getElementById("interrupt").click(), true)`))
	waitFor(t, b, bodyHas("Interrupt sent"))
	require.Eventually(t, func() bool {
		s, err := c.Beta.Sessions.Get(ctx, sid, anthropic.BetaSessionGetParams{})
		return err == nil && s.Status == "idle"
	}, 20*time.Second, 20*time.Millisecond, "the interrupt stopped the turn")
	waitFor(t, b, `document.getElementById('summary').dataset.status === 'idle'`)
	waitFor(t, b, bodyHas("user.interrupt"))
}

// A form on another site that posts to the console is refused (Go's
// CrossOriginProtection) and changes nothing, even on the trusted socket
// where no cookie stands in the way.
func TestBrowserCrossSiteFormPostIsRefused(t *testing.T) {
	r := startRig(t, rigConfig(t), daemon.Options{})
	c, ctx := r.client(), t.Context()
	d, err := c.Beta.Deployments.New(ctx, deploymentParams("target", "agent_a", "0 9 * * *", "UTC"))
	require.NoError(t, err)
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/console/deployments/%s/pause"></form>
<script>document.getElementById("f").submit()</script>`, r.sockURL, d.ID)
	}))
	t.Cleanup(evil.Close)
	b := tab(t)
	// "localhost" is another site than "127.0.0.1" to the browser.
	evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)
	require.NoError(t, chromedp.Do(b, chromedp.Navigate(evilURL)))
	waitFor(t, b, bodyHas("Cross-origin request refused"))
	got, err := c.Beta.Deployments.Get(ctx, d.ID, anthropic.BetaDeploymentGetParams{})
	require.NoError(t, err)
	assert.Equal(t, "active", string(got.Status), "the cross-site POST changed nothing")

	// The same form from the console's own page works (the actions test
	// clicks it); a GET from elsewhere is just a page.
	require.NoError(t, chromedp.Do(b, chromedp.Navigate(r.sockURL+"/console/deployments/"+d.ID), chromedp.WaitVisible(chromedp.ID("pause"))))
}

// On TCP the console asks for an API key: a wrong one is refused, a right
// one signs in with an HttpOnly SameSite=Strict cookie that the JSON API
// ignores; revoking the key ends the console session; sign-out works.
func TestBrowserSignInOnTCP(t *testing.T) {
	r := startRig(t, rigConfig(t), daemon.Options{})
	created := r.admin(t, http.MethodPost, "/admin/apikeys", map[string]string{"name": "console"})
	key, keyID := created["key"].(string), created["id"].(string)
	other := r.admin(t, http.MethodPost, "/admin/apikeys", map[string]string{"name": "other"})["key"].(string)

	b := tab(t)
	require.NoError(t, chromedp.Do(b, chromedp.Navigate(r.tcpURL+"/console/"), chromedp.WaitVisible(chromedp.ID("api_key"))))
	loc, err := chromedp.Run(b, chromedp.Location())
	require.NoError(t, err)
	assert.Contains(t, loc, "/console/signin")
	screenshot(t, b, "signin")

	require.NoError(t, chromedp.Do(b, chromedp.SendKeys(chromedp.ID("api_key"), "s0d_wrong")))
	click(t, b, "signin", `document.querySelector('.banner.error') !== null`)
	assert.Contains(t, text(t, b, ".banner.error"), "not valid")
	cookies, err := chromedp.Call(b, network.GetCookies, network.GetCookiesParams{URLs: []string{r.tcpURL}})
	require.NoError(t, err)
	assert.Empty(t, cookies.Cookies, "a wrong key sets no cookie")

	require.NoError(t, chromedp.Do(b, chromedp.SendKeys(chromedp.ID("api_key"), key)))
	click(t, b, "signin", `document.querySelector('h1') && document.querySelector('h1').innerText === 'Deployments'`)
	assert.Contains(t, text(t, b, ".who"), keyID)
	cookies, err = chromedp.Call(b, network.GetCookies, network.GetCookiesParams{URLs: []string{r.tcpURL}})
	require.NoError(t, err)
	require.Len(t, cookies.Cookies, 1)
	ck := cookies.Cookies[0]
	assert.True(t, ck.HTTPOnly)
	assert.Equal(t, "Strict", string(ck.SameSite))
	assert.False(t, ck.Secure, "no TLS here; with TLS the cookie is Secure (__Host-)")

	// The cookie opens the console but never the JSON API.
	withCookie := func(path string) *http.Response {
		req, err := http.NewRequest(http.MethodGet, r.tcpURL+path, nil)
		require.NoError(t, err)
		req.Header.Set("anthropic-beta", "managed-agents-2026-04-01")
		req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	assert.Equal(t, http.StatusOK, withCookie("/console/").StatusCode)
	assert.Equal(t, http.StatusUnauthorized, withCookie("/v1/deployments").StatusCode)

	// Revoking the key ends its console session at the next request.
	r.admin(t, http.MethodPost, "/admin/apikeys/"+keyID+"/revoke", nil)
	resp := withCookie("/console/")
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Location"), "/console/signin")
	// Navigate, not Reload: chromedp's Reload does not wait for the new
	// document, and a query could then find the old page's nodes (seen as
	// "Could not find node with given id" under load).
	require.NoError(t, chromedp.Do(b, chromedp.Navigate(r.tcpURL+"/console/"), chromedp.WaitVisible(chromedp.ID("api_key"))))
	waitFor(t, b, bodyHas("the API key it was signed in with was revoked"))
	assert.True(t, eval[bool](t, b, `!!document.getElementById('api_key')`))

	// Another key signs in; signing out ends that session.
	require.NoError(t, chromedp.Do(b, chromedp.SendKeys(chromedp.ID("api_key"), other)))
	click(t, b, "signin", `document.querySelector('h1') && document.querySelector('h1').innerText === 'Deployments'`)
	require.NoError(t, chromedp.Do(b, chromedp.Click(chromedp.CSS(".who button"))))
	waitFor(t, b, bodyHas("Signed out."))
	require.NoError(t, chromedp.Do(b, chromedp.Navigate(r.tcpURL+"/console/"), chromedp.WaitVisible(chromedp.ID("api_key"))))
}

// The failures page lists failed runs across deployments and failed
// webhook deliveries, newest first; Retry queues a delivery again as the
// admin route does. The webhooks page shows endpoints with their counts
// and the deliveries with their attempts.
func TestBrowserFailuresAndWebhooks(t *testing.T) {
	cfg := rigConfig(t)
	cfg.Backend = "none"
	var hits atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		http.Error(w, "receiver down for maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(sink.Close)
	cfg.Webhooks = webhooks.Config{RetrySchedule: []time.Duration{}, Endpoints: []webhooks.EndpointConfig{
		{URL: sink.URL + "/hooks/sandbox0d", SigningKey: webhooks.Secret(signingKey()), Events: []string{"deployment_run.failed"}}}}
	backend := sessionstest.New(map[string]int64{"agent_a": 1})
	r := startRig(t, cfg, daemon.Options{Backend: backend})
	c, ctx := r.client(), t.Context()
	d1, err := c.Beta.Deployments.New(ctx, deploymentParams("nightly-digest", "agent_a", "30 2 * * *", "America/New_York"))
	require.NoError(t, err)
	d2, err := c.Beta.Deployments.New(ctx, deploymentParams("<script>alert('name')</script>", "agent_a", "", ""))
	require.NoError(t, err)
	backend.FailNext(&sessions.RunError{Type: sessions.ErrEnvironmentNotFound, Message: "environment env_1 was not found"},
		&sessions.RunError{Type: sessions.ErrSessionRateLimited, Message: "too many sessions <b>right now</b>"})
	_, err = c.Beta.Deployments.Run(ctx, d1.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	_, err = c.Beta.Deployments.Run(ctx, d2.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		list := r.admin(t, http.MethodGet, "/admin/webhooks/deliveries?failed=true", nil)["data"].([]any)
		return len(list) == 2
	}, 20*time.Second, 20*time.Millisecond, "both run.failed deliveries fail (no retries configured)")

	b := tab(t)
	require.NoError(t, chromedp.Do(b, chromedp.Navigate(r.sockURL+"/console/failures"), chromedp.WaitVisible(chromedp.CSS("table.runs"))))
	rows := eval[[]string](t, b, `[...document.querySelectorAll('table.runs tbody tr')].map(e => e.innerText)`)
	require.Len(t, rows, 2)
	assert.Contains(t, rows[0], "<script>alert('name')</script>", "newest first; a hostile name is text")
	assert.Contains(t, rows[0], "session_rate_limited_error")
	assert.Contains(t, rows[0], "too many sessions <b>right now</b>")
	assert.Contains(t, rows[1], "nightly-digest")
	assert.Contains(t, rows[1], "environment_not_found_error")
	assert.Equal(t, 0, eval[int](t, b, `document.querySelectorAll('main script, main b').length`))
	assert.Equal(t, 2, eval[int](t, b, `document.querySelectorAll('table.deliveries button.retry').length`))
	screenshot(t, b, "failures")

	before := hits.Load()
	click(t, b, "retry-0", bodyHas("Delivery queued again"))
	require.Eventually(t, func() bool { return hits.Load() > before }, 20*time.Second, 20*time.Millisecond, "the retried delivery is attempted again")

	require.NoError(t, chromedp.Do(b, chromedp.Navigate(r.sockURL+"/console/webhooks"), chromedp.WaitVisible(chromedp.CSS("table.endpoints"))))
	ep := text(t, b, "table.endpoints tbody tr")
	assert.Contains(t, ep, "/hooks/sandbox0d")
	assert.Contains(t, ep, "deployment_run.failed")
	waitFor(t, b, `document.querySelectorAll('table.deliveries tbody tr').length === 2`)
	require.NoError(t, chromedp.Do(b, chromedp.Click(chromedp.CSS("table.deliveries details summary"))))
	assert.Contains(t, text(t, b, "table.deliveries details"), "HTTP 503")
	screenshot(t, b, "webhooks")

	// The deployments page says why the first one failed; a session link
	// has nowhere to go with this backend, and the page says so.
	require.NoError(t, chromedp.Do(b, chromedp.Navigate(r.sockURL+"/console/?failed=1"), chromedp.WaitVisible(chromedp.CSS("table.deployments"))))
	assert.Equal(t, 2, eval[int](t, b, `document.querySelectorAll('table.deployments tbody tr').length`))
}

// A scheduled run and a manual one are told apart on the deployment page:
// the scheduled one says when it was due (scheduled_at) beside when it
// started. The scheduled run is a fire missed while the daemon was down and
// run at the next start (schedule.misfire_grace), on an injected clock.
func TestBrowserScheduledAndManualRuns(t *testing.T) {
	cfg := rigConfig(t)
	var mu sync.Mutex
	clock := time.Date(2026, 12, 7, 7, 59, 30, 0, time.UTC) // 08:59:30 in Berlin
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	first := startRig(t, cfg, daemon.Options{Now: now})
	fc := first.client()
	d, err := fc.Beta.Deployments.New(t.Context(), deploymentParams("morning-report", "agent_a", "0 9 * * *", "Europe/Berlin"))
	require.NoError(t, err)
	first.stop(t)

	mu.Lock()
	clock = time.Date(2026, 12, 7, 8, 0, 10, 0, time.UTC) // 10 s after the 09:00 Berlin fire
	mu.Unlock()
	r := startRig(t, cfg, daemon.Options{Now: now})
	c, ctx := r.client(), t.Context()
	var scheduled anthropic.BetaManagedAgentsDeploymentRun
	require.Eventually(t, func() bool {
		page, err := c.Beta.DeploymentRuns.List(ctx, anthropic.BetaDeploymentRunListParams{DeploymentID: anthropic.String(d.ID)})
		if err != nil || len(page.Data) != 1 {
			return false
		}
		scheduled = page.Data[0]
		return true
	}, 20*time.Second, 20*time.Millisecond, "the missed fire runs at start")
	require.Equal(t, "schedule", string(scheduled.TriggerContext.Type))
	manual, err := c.Beta.Deployments.Run(ctx, d.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)

	b := tab(t)
	require.NoError(t, chromedp.Do(b, chromedp.Navigate(r.sockURL+"/console/deployments/"+d.ID), chromedp.WaitVisible(chromedp.CSS("table.runs"))))
	rows := eval[[]string](t, b, `[...document.querySelectorAll('table.runs tbody tr')].map(e => e.innerText)`)
	require.Len(t, rows, 2)
	assert.Contains(t, rows[0], manual.ID)
	assert.Contains(t, rows[0], "manual")
	assert.Contains(t, rows[0], "— (manual)", "a manual run has no scheduled time")
	assert.Contains(t, rows[1], scheduled.ID)
	assert.Contains(t, rows[1], "scheduled")
	assert.Contains(t, rows[1], "Mon 2026-12-07 09:00 CET", "scheduled_at, in the deployment's zone")
	assert.Contains(t, rows[1], "Mon 2026-12-07 09:00 CET (Europe/Berlin)")
	// The schedule section says when the last scheduled run was.
	waitFor(t, b, bodyHas("last scheduled run Mon 2026-12-07 09:00 CET"))

	// The filter by trigger keeps the scheduled one.
	require.NoError(t, chromedp.Do(b, chromedp.Navigate(r.sockURL+"/console/deployments/"+d.ID+"?trigger=schedule"), chromedp.WaitVisible(chromedp.CSS("table.runs"))))
	assert.Equal(t, 1, eval[int](t, b, `document.querySelectorAll('table.runs tbody tr').length`))
}
