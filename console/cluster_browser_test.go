package console_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/store/storetest"
)

// startClusterRigs starts n console rigs as the nodes of one cluster on an
// embedded three-member etcd: each its own data dir, socket and loopback
// TCP listener (its cluster.advertise_url), the local backend with the
// live-transcript harness (agent_wait, waiting for waitFile).
func startClusterRigs(t *testing.T, n int, waitFile string) []*rig {
	etcd := storetest.Start(t, 3)
	var rigs []*rig
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		cfg := rigConfig(t)
		cfg.Listen = addr
		cfg.Local.Agents = append(cfg.Local.Agents, daemon.LocalAgent{ID: "agent_wait", Version: 1,
			Command: []string{"/bin/sh", "-c", waitScript}, Env: map[string]string{"WAIT_FILE": waitFile}})
		cfg.Store = daemon.StoreConfig{Type: "etcd", Etcd: daemon.StoreEtcdConfig{Endpoints: etcd.Endpoints(), Prefix: "/console-test/",
			DialTimeout: 5 * time.Second, RequestTimeout: 5 * time.Second}}
		cfg.Cluster = daemon.ClusterConfig{NodeName: fmt.Sprintf("node-%d", i), AdvertiseURL: "http://" + addr, LeaseTTL: 4 * time.Second}
		rigs = append(rigs, startRig(t, cfg, daemon.Options{}))
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, r := range rigs {
				t.Logf("node-%d log:\n%s", i, r.logs.String())
			}
		}
	})
	// Every node holds a lease and has published its load (placement and
	// forwarding read them).
	require.Eventually(t, func() bool {
		st := rigs[0].admin(t, "GET", "/admin/cluster", nil)
		nodes, _ := st["nodes"].([]any)
		loads, _ := st["loads"].([]any)
		return len(nodes) == n && len(loads) == n && st["leader"] != ""
	}, 30*time.Second, 20*time.Millisecond, "%d nodes hold a lease", n)
	return rigs
}

// The console in a cluster: node-0's console lists a session that lives on
// node-1 (with its node), shows its transcript live through node-0 (the
// page's reads and its stream are forwarded to node-1) and sends a message
// to it; the nodes view shows both nodes, the leader, their loads and
// node-0's cordon, as GET /admin/cluster reports them.
func TestBrowserClusterSessionOnAnotherNode(t *testing.T) {
	waitFile := filepath.Join(t.TempDir(), "go-on")
	rigs := startClusterRigs(t, 2, waitFile)
	a, b := rigs[0], rigs[1]
	c, cb, ctx := a.client(), b.client(), t.Context()

	// node-0 cordoned: a run made through node-0 is placed on node-1.
	a.admin(t, "POST", "/admin/cluster/cordon", map[string]any{"node": "node-0"})
	d, err := c.Beta.Deployments.New(ctx, deploymentParams("across <i>nodes</i>", "agent_wait", "", ""))
	require.NoError(t, err)
	run, err := c.Beta.Deployments.Run(ctx, d.ID, anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	require.NotEmpty(t, run.SessionID, "run error: %+v", run.Error)
	sid := run.SessionID
	require.Eventually(t, func() bool {
		s, err := cb.Beta.Sessions.Get(ctx, sid, anthropic.BetaSessionGetParams{})
		return err == nil && s.Status == "running"
	}, 20*time.Second, 20*time.Millisecond, "the turn runs on node-1")
	// A session of node-0's own, so the list holds both nodes.
	a.admin(t, "POST", "/admin/cluster/uncordon", map[string]any{"node": "node-0"})
	b.admin(t, "POST", "/admin/cluster/cordon", map[string]any{"node": "node-1"})
	own, err := c.Beta.Sessions.New(ctx, anthropic.BetaSessionNewParams{
		Agent: anthropic.BetaSessionNewParamsAgentUnion{OfString: anthropic.String("agent_a")}, EnvironmentID: "env_1"})
	require.NoError(t, err)

	br := tab(t)
	// The sessions list: both, each with its node, newest first.
	require.NoError(t, chromedp.Do(br, chromedp.Navigate(a.sockURL+"/console/sessions"), chromedp.WaitVisible(chromedp.ID("sessions"))))
	rows := eval[[]string](t, br, `[...document.querySelectorAll('#sessions tbody tr')].map(r => r.dataset.session + ' ' + r.querySelector('.node').innerText)`)
	assert.Equal(t, []string{own.ID + " node-0", sid + " node-1"}, rows)
	screenshot(t, br, "sessions")

	// The session page on node-0 for node-1's session: its node, the
	// transcript so far, then live the line printed after the file appears.
	require.NoError(t, chromedp.Do(br, chromedp.Navigate(a.sockURL+"/console/sessions/"+sid), chromedp.WaitVisible(chromedp.ID("transcript"))))
	assert.Equal(t, "node-1", text(t, br, "#node"))
	waitFor(t, br, bodyHas(`first <b>line</b><script>document.title="pwned"</script>`))
	// Leaving the page while it follows the live stream ends the forwarded
	// stream (the proxy to node-1 aborts; nothing crashes); coming back
	// follows it again.
	require.NoError(t, chromedp.Do(br, chromedp.Navigate(a.sockURL+"/console/sessions"), chromedp.WaitVisible(chromedp.ID("sessions"))))
	require.NoError(t, chromedp.Do(br, chromedp.Navigate(a.sockURL+"/console/sessions/"+sid), chromedp.WaitVisible(chromedp.ID("transcript"))))
	waitFor(t, br, bodyHas(`first <b>line</b><script>document.title="pwned"</script>`))
	eval[bool](t, br, `window.sameDocument = true`)
	assert.False(t, eval[bool](t, br, bodyHas("second line")))
	require.NoError(t, os.WriteFile(waitFile, nil, 0o644))
	waitFor(t, br, bodyHas("second line"))
	waitFor(t, br, `document.getElementById('summary').dataset.status === 'idle'`)
	assert.True(t, eval[bool](t, br, `window.sameDocument === true`), "the second line arrived live through node-0, not by a reload")
	pageIDs := eval[[]string](t, br, `[...document.querySelectorAll('#transcript [data-id]')].map(e => e.dataset.id)`)
	events, err := cb.Beta.Sessions.Events.List(ctx, sid, anthropic.BetaSessionEventListParams{Limit: anthropic.Int(1000)})
	require.NoError(t, err)
	var apiIDs []string
	for _, ev := range events.Data {
		apiIDs = append(apiIDs, ev.ID)
	}
	assert.Equal(t, apiIDs, pageIDs, "the owner's events, each once")

	// Send from node-0's page: the message reaches node-1's session.
	require.NoError(t, chromedp.Do(br, chromedp.SendKeys(chromedp.ID("message"), "from node-0")))
	click(t, br, "send", `document.querySelectorAll('#transcript .ev-agent').length >= 4 && document.getElementById('summary').dataset.status === 'idle'`)
	events, err = cb.Beta.Sessions.Events.List(ctx, sid, anthropic.BetaSessionEventListParams{Limit: anthropic.Int(1000)})
	require.NoError(t, err)
	assert.Contains(t, events.RawJSON(), "from node-0", "node-1 recorded the message sent on node-0's page")

	// The nodes view: both nodes, the leader, loads and the cordon.
	st := a.admin(t, "GET", "/admin/cluster", nil)
	leader := st["leader"].(string)
	require.NoError(t, chromedp.Do(br, chromedp.Navigate(a.sockURL+"/console/nodes"), chromedp.WaitVisible(chromedp.ID("nodes"))))
	assert.Contains(t, text(t, br, "#leader"), "Leader: "+leader)
	nodes := eval[[]string](t, br, `[...document.querySelectorAll('#nodes tbody tr')].map(r => r.dataset.node + ' ' + r.querySelector('.role').innerText.trim() + ' ' + r.querySelector('.cordon').innerText.split('\n')[0].trim())`)
	want := map[string]string{"node-0": "node-0 follower ✓ takes sessions", "node-1": "node-1 follower ‖ cordoned"}
	for n, line := range want {
		if n == leader {
			want[n] = n + " ★ leader" + line[len(n+" follower"):]
		}
	}
	assert.ElementsMatch(t, []string{want["node-0"], want["node-1"]}, nodes)
	assert.Equal(t, leader, eval[string](t, br, `document.querySelector('#nodes tbody tr').dataset.node`), "the leader first")
	assert.Contains(t, text(t, br, `#nodes tr[data-node="node-0"]`), "(this node)")
	free := eval[string](t, br, `document.querySelector('#nodes tr[data-node="node-1"] .free').innerText`)
	assert.Regexp(t, `^\d+$`, free, "node-1's free slots are published")
	assert.Regexp(t, `^\d+ (s|min)`, text(t, br, `#nodes tr[data-node="node-1"] .lease`))
	assert.True(t, eval[bool](t, br, `!!document.querySelector('nav a[href="/console/nodes"][aria-current="page"]')`))
	screenshot(t, br, "nodes")
}

// One box offers no nodes view: no nav link, and the page says why.
func TestBrowserNoNodesViewOnOneBox(t *testing.T) {
	r := startRig(t, rigConfig(t), daemon.Options{})
	br := tab(t)
	require.NoError(t, chromedp.Do(br, chromedp.Navigate(r.sockURL+"/console/sessions"), chromedp.WaitVisible(chromedp.CSS("main"))))
	waitFor(t, br, bodyHas("No sessions yet"))
	assert.False(t, eval[bool](t, br, `!!document.querySelector('nav a[href="/console/nodes"]')`))
	require.NoError(t, chromedp.Do(br, chromedp.Navigate(r.sockURL+"/console/nodes"), chromedp.WaitVisible(chromedp.CSS("main"))))
	waitFor(t, br, bodyHas("This daemon is not in a cluster (store.type bbolt)"))
}
