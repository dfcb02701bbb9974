package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/store/storetest"
	"github.com/sandbox0/sandbox0d/webhooks"
)

// Local sessions in a cluster (issue 26): three sandbox0d nodes on an
// embedded three-member etcd, each with the local backend (a command
// harness), its own data dir and session file, and a TCP listener on
// loopback that other nodes forward to (cluster.advertise_url).

type localClusterNode struct {
	*running
	name string
	cfg  daemon.Config
	http *http.Client // over the node's socket
}

func (n *localClusterNode) url(path string) string { return "http://" + n.name + path }

// freeLoopbackAddr picks a port for a node's TCP listener, which must be
// known before the node starts (it publishes it as its advertise_url).
func freeLoopbackAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func startLocalCluster(t testing.TB, n int, tweak ...func(*daemon.Config)) []*localClusterNode {
	return startLocalClusterOn(t, storetest.Start(t, 3), n, tweak...)
}

// startLocalClusterOn is startLocalCluster on a given etcd cluster (a test
// that stops its members or reads etcd itself).
func startLocalClusterOn(t testing.TB, etcd *storetest.Cluster, n int, tweak ...func(*daemon.Config)) []*localClusterNode {
	harnessDir := t.TempDir()
	harness := filepath.Join(harnessDir, "harness.sh")
	require.NoError(t, os.WriteFile(harness, []byte("#!/bin/sh\necho \"turn on $(hostname)\"\necho done\n"), 0o755))
	// A turn that runs until interrupted, idle meanwhile (no polling loop:
	// thirty of them must not load the machine).
	wait := filepath.Join(harnessDir, "wait.sh")
	require.NoError(t, os.WriteFile(wait, []byte("#!/bin/sh\necho started\nexec sleep 3600\n"), 0o755))
	var nodes []*localClusterNode
	for i := range n {
		dir := t.TempDir()
		name := fmt.Sprintf("node-%d", i)
		addr := freeLoopbackAddr(t)
		cfg := baseConfig(dir)
		cfg.Socket = filepath.Join(dir, "s.sock")
		cfg.Listen = addr
		cfg.Backend = "local"
		cfg.Local = daemon.LocalConfig{
			Agents: []daemon.LocalAgent{{ID: "agent_a", Version: 1, Command: []string{harness}},
				{ID: "agent_many", Version: 1, Command: []string{"seq", "1", "10000"}}, // a 10,000-event turn
				{ID: "agent_wait", Version: 1, Command: []string{wait}}},
			Environments:          []daemon.LocalEnvironment{{ID: "env_1", Timeout: 10 * time.Minute}},
			MaxConcurrentSessions: 8, KillGracePeriod: 500 * time.Millisecond, GitBinary: "git",
		}
		cfg.Store = daemon.StoreConfig{Type: "etcd", Etcd: daemon.StoreEtcdConfig{ReadMirror: true, Endpoints: etcd.Endpoints(), Prefix: "/sess-test/",
			DialTimeout: 5 * time.Second, RequestTimeout: 5 * time.Second}}
		cfg.Cluster = daemon.ClusterConfig{NodeName: name, AdvertiseURL: "http://" + addr, LeaseTTL: 4 * time.Second}
		for _, f := range tweak {
			f(&cfg)
		}
		node := &localClusterNode{name: name, cfg: cfg, http: socketClient(cfg.Socket)}
		node.start(t)
		nodes = append(nodes, node)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, r := range nodes {
				t.Logf("%s log:\n%s", r.name, r.logs.String())
			}
		}
	})
	awaitNodes(t, nodes[0], n)
	return nodes
}

// start starts (or restarts, on its data dir) the node.
func (n *localClusterNode) start(t testing.TB) {
	logs := &syncBuffer{}
	d, err := daemon.New(n.cfg, slog.New(slog.NewTextHandler(logs, nil)), daemon.Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{d: d, cancel: cancel, done: make(chan error, 1), socket: n.cfg.Socket, logs: logs}
	go func() { r.done <- d.Run(ctx) }()
	<-d.Ready()
	t.Cleanup(func() {
		if r.cancel != nil {
			r.cancel()
			require.NoError(t, <-r.done)
			r.cancel = nil
		}
	})
	n.running = r
}

// awaitNodes waits until n nodes hold a lease (forwarding needs them).
func awaitNodes(t testing.TB, via *localClusterNode, n int) {
	require.Eventually(t, func() bool {
		resp, err := via.http.Get(via.url("/admin/cluster"))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct {
			Nodes []any `json:"nodes"`
		}
		return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&body) == nil && len(body.Nodes) == n
	}, 30*time.Second, 20*time.Millisecond, "%d nodes hold a lease", n)
}

func clusterSessionStatus(t *testing.T, n *localClusterNode, id string) string {
	status, body := do(t, n.http, "GET", n.url("/v1/sessions/"+id), "", nil)
	require.Equal(t, 200, status, "%s GET session %s: %v", n.name, id, body)
	s, _ := body["status"].(string)
	return s
}

// tryStatus is a session's status, "" while it cannot be read (a node
// whose lease is expiring answers 503 until the leader marks it lost).
func tryStatus(t *testing.T, n *localClusterNode, id string) string {
	status, body := do(t, n.http, "GET", n.url("/v1/sessions/"+id), "", nil)
	if status != 200 {
		return ""
	}
	s, _ := body["status"].(string)
	return s
}

func eventTypes(t *testing.T, n *localClusterNode, id string) []string {
	status, body := do(t, n.http, "GET", n.url("/v1/sessions/"+id+"/events?limit=1000&order=asc"), "", nil)
	require.Equal(t, 200, status, "%s events of %s: %v", n.name, id, body)
	var out []string
	for _, e := range body["data"].([]any) {
		out = append(out, e.(map[string]any)["type"].(string))
	}
	return out
}

// listAll pages through sessions.list on n, limit per page.
func listAll(t *testing.T, n *localClusterNode, limit int) []string {
	var ids []string
	page := ""
	for {
		q := fmt.Sprintf("/v1/sessions?limit=%d", limit)
		if page != "" {
			q += "&page=" + page
		}
		status, body := do(t, n.http, "GET", n.url(q), "", nil)
		require.Equal(t, 200, status, "%v", body)
		for _, s := range body["data"].([]any) {
			ids = append(ids, s.(map[string]any)["id"].(string))
		}
		next, _ := body["next_page"].(string)
		if next == "" {
			return ids
		}
		page = next
	}
}

func TestClusterLocalSessionsReachableFromEveryNode(t *testing.T) {
	nodes := startLocalCluster(t, 3)
	status, dep := do(t, nodes[0].http, "POST", nodes[0].url("/v1/deployments"), "", map[string]any{
		"name": "spread", "agent": "agent_a", "environment_id": "env_1",
		"initial_events": []any{map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": "hi"}}}},
	})
	require.Equal(t, 200, status, "%v", dep)
	// Two manual runs through each node (placed where there is room).
	owner := map[string]*localClusterNode{}
	var created []string
	for round := range 2 {
		for _, n := range nodes {
			status, run := do(t, n.http, "POST", n.url("/v1/deployments/"+dep["id"].(string)+"/run"), "", nil)
			require.Equal(t, 200, status, "round %d on %s: %v", round, n.name, run)
			id, _ := run["session_id"].(string)
			require.NotEmpty(t, id, "%v", run)
			owner[id] = n
			created = append(created, id)
		}
	}
	for id, own := range owner {
		require.Eventually(t, func() bool { return clusterSessionStatus(t, own, id) == "idle" }, 30*time.Second, 20*time.Millisecond)
	}

	for id, own := range owner {
		for _, n := range nodes {
			if n == own {
				continue
			}
			// Retrieve and events list through another node.
			assert.Equal(t, "idle", clusterSessionStatus(t, n, id), "%s read on %s", id, n.name)
			assert.Equal(t, eventTypes(t, own, id), eventTypes(t, n, id), "%s events on %s equal the owner's", id, n.name)
		}
	}

	// Send through every other node: each message starts a turn on the
	// owner, seen from everywhere.
	id := created[0]
	own := owner[id]
	before := len(eventTypes(t, own, id))
	for _, n := range nodes {
		if n == own {
			continue
		}
		status, body := do(t, n.http, "POST", n.url("/v1/sessions/"+id+"/events"), "", map[string]any{
			"events": []any{map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": "from " + n.name}}}}})
		require.Equal(t, 200, status, "send through %s: %v", n.name, body)
		require.Eventually(t, func() bool { return clusterSessionStatus(t, n, id) == "idle" }, 30*time.Second, 20*time.Millisecond)
		// Interrupt through it too: accepted on the owner (an idle
		// session's interrupt is recorded and changes nothing).
		status, body = do(t, n.http, "POST", n.url("/v1/sessions/"+id+"/events"), "", map[string]any{
			"events": []any{map[string]any{"type": "user.interrupt"}}})
		require.Equal(t, 200, status, "interrupt through %s: %v", n.name, body)
	}
	after := eventTypes(t, nodes[1], id)
	assert.Greater(t, len(after), before)
	assert.Equal(t, 3, count(after, "user.message"), "the initial message and both sends, recorded on the owner")
	assert.Equal(t, 2, count(after, "user.interrupt"))

	// A stream through another node, from the first event (Last-Event-ID
	// 0), replays what the owner holds; the request id is kept.
	var other *localClusterNode
	for _, n := range nodes {
		if n != own {
			other = n
			break
		}
	}
	req, err := http.NewRequest("GET", other.url("/v1/sessions/"+id+"/events/stream"), nil)
	require.NoError(t, err)
	req.Header.Set("anthropic-beta", "managed-agents-2026-04-01")
	req.Header.Set("Last-Event-ID", "0")
	req.Header.Set("Request-Id", "req_forwarded_stream")
	resp, err := other.http.Do(req)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "req_forwarded_stream", resp.Header.Get("request-id"))
	sc := bufio.NewScanner(resp.Body)
	var streamed []string
	for len(streamed) < len(after) && sc.Scan() {
		if typ, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			streamed = append(streamed, typ)
		}
	}
	_ = resp.Body.Close()
	assert.Equal(t, after, streamed, "the forwarded stream replays the owner's events in order")

	// The list through any node is the union, newest first, across pages.
	slices.Reverse(created)
	for _, n := range nodes {
		assert.Equal(t, created, listAll(t, n, 4), "sessions.list on %s", n.name)
	}

	// Delete through another node: gone everywhere.
	status, body := do(t, other.http, "DELETE", other.url("/v1/sessions/"+id), "", nil)
	require.Equal(t, 200, status, "%v", body)
	for _, n := range nodes {
		status, _ := do(t, n.http, "GET", n.url("/v1/sessions/"+id), "", nil)
		assert.Equal(t, 404, status, "deleted session read on %s", n.name)
		assert.NotContains(t, listAll(t, n, 100), id)
	}
}

func count(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// sseFrame is one server-sent event.
type sseFrame struct {
	id   uint64
	typ  string
	data string
}

// readFrames reads frames until EOF or until stop says so.
func readFrames(t *testing.T, sc *bufio.Scanner, stop func(sseFrame) bool) []sseFrame {
	var out []sseFrame
	var cur sseFrame
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			_, err := fmt.Sscan(line[4:], &cur.id)
			require.NoError(t, err)
		case strings.HasPrefix(line, "event: "):
			cur.typ = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.data = line[6:]
		case line == "" && cur.typ != "":
			out = append(out, cur)
			if stop != nil && stop(cur) {
				return out
			}
			cur = sseFrame{}
		}
	}
	return out
}

func openStream(t *testing.T, n *localClusterNode, id string, lastEventID uint64) (*http.Response, *bufio.Scanner) {
	// A bound, so a stream that never ends fails the test with what it read
	// instead of hanging the package until go test's timeout.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", n.url("/v1/sessions/"+id+"/events/stream"), nil)
	require.NoError(t, err)
	req.Header.Set("anthropic-beta", "managed-agents-2026-04-01")
	req.Header.Set("Last-Event-ID", fmt.Sprint(lastEventID))
	resp, err := n.http.Do(req)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
	return resp, sc
}

// A forwarded stream carries a 10,000-event turn without loss or
// duplication, resumes with Last-Event-ID on another node after a cut, and
// ends when the session is deleted (through a third node).
func TestClusterForwardedStreamOf10000Events(t *testing.T) {
	nodes := startLocalCluster(t, 3)
	own, first, second := nodes[0], nodes[1], nodes[2]
	status, dep := do(t, own.http, "POST", own.url("/v1/deployments"), "", map[string]any{
		"name": "many", "agent": "agent_many", "environment_id": "env_1",
		"initial_events": []any{map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": "go"}}}},
	})
	require.Equal(t, 200, status, "%v", dep)
	status, run := do(t, own.http, "POST", own.url("/v1/deployments/"+dep["id"].(string)+"/run"), "", nil)
	require.Equal(t, 200, status, "%v", run)
	id := run["session_id"].(string)

	// Through node 1 from the first event, cut after 3,000 frames.
	resp, sc := openStream(t, first, id, 0)
	frames := readFrames(t, sc, func(f sseFrame) bool { return f.id >= 3000 })
	require.NoError(t, resp.Body.Close())
	require.NotEmpty(t, frames)
	// Resumed through node 2 after the last id seen, until the turn is idle.
	resp, sc = openStream(t, second, id, frames[len(frames)-1].id)
	defer resp.Body.Close()
	frames = append(frames, readFrames(t, sc, func(f sseFrame) bool { return f.typ == "session.status_idle" })...)

	var texts []string
	for i, f := range frames {
		require.Equal(t, uint64(i+1), f.id, "frame %d: ids follow each other, nothing lost or repeated", i)
		if f.typ == "agent.message" {
			texts = append(texts, f.data)
		}
	}
	require.Len(t, texts, 10000)
	for i, data := range texts {
		require.Contains(t, data, fmt.Sprintf(`"text":"%d`, i+1), "agent.message %d in order", i+1)
	}
	// Deleted through node 0 (the owner) while node 2's stream is open:
	// the forwarded stream gets the session.deleted frame and ends.
	status, body := do(t, own.http, "DELETE", own.url("/v1/sessions/"+id), "", nil)
	require.Equal(t, 200, status, "%v", body)
	rest := readFrames(t, sc, nil) // returns at EOF
	require.NotEmpty(t, rest)
	assert.Equal(t, "session.deleted", rest[len(rest)-1].typ)
	require.NoError(t, sc.Err())
}

// A node dies with its sessions: once its lease expires the leader marks
// them terminated in the index, with a session.error naming the node, read
// so from every other node, one webhook each; a second pass marks nothing.
// The node restarts on its data dir and reconciles: its own records win,
// its sessions are reachable again, nothing duplicates in the list.
func TestClusterNodeDeathMarksItsSessionsLost(t *testing.T) {
	rc, hookURL := newHookReceiver(t, 26)
	nodes := startLocalCluster(t, 3, func(cfg *daemon.Config) {
		cfg.Webhooks = webhooks.Config{Endpoints: []webhooks.EndpointConfig{{URL: hookURL, SigningKey: webhooks.Secret(rc.key),
			Events: []string{"session.status_terminated"}}}}
	})
	status, dep := do(t, nodes[0].http, "POST", nodes[0].url("/v1/deployments"), "", map[string]any{
		"name": "doomed", "agent": "agent_a", "environment_id": "env_1",
		"initial_events": []any{map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": "hi"}}}},
	})
	require.Equal(t, 200, status, "%v", dep)
	victim := nodes[2]
	for _, n := range nodes {
		n.d.PublishLoad()
	}
	// With the others cordoned, runs through any node land on the victim.
	cordon(t, nodes[0], "cordon", "node-0")
	cordon(t, nodes[0], "cordon", "node-1")
	var lost, kept []string
	for i, n := range []*localClusterNode{nodes[0], nodes[1], nodes[0], nodes[1]} {
		if i == 2 {
			cordon(t, nodes[1], "uncordon", "node-0")
			cordon(t, nodes[1], "uncordon", "node-1")
			cordon(t, nodes[1], "cordon", "node-2")
		}
		status, run := do(t, n.http, "POST", n.url("/v1/deployments/"+dep["id"].(string)+"/run"), "", nil)
		require.Equal(t, 200, status, "%v", run)
		id := run["session_id"].(string)
		require.Eventually(t, func() bool { return clusterSessionStatus(t, n, id) == "idle" }, 30*time.Second, 20*time.Millisecond)
		if i < 2 {
			lost = append(lost, id)
			assert.Equal(t, "node-2", sessionNode(t, n, id), "placed on the only uncordoned node")
		} else {
			kept = append(kept, id)
			assert.NotEqual(t, "node-2", sessionNode(t, n, id), "not placed on a cordoned node")
		}
	}
	before := listAll(t, nodes[0], 100)

	// Stopped hard: its etcd client cut first, so its lease is not revoked
	// and lapses by itself, and nothing it does on the way out reaches etcd.
	victim.d.CrashStore()
	victim.stop(t)
	live := nodes[:2]
	for _, id := range lost {
		for _, n := range live {
			require.Eventually(t, func() bool { return tryStatus(t, n, id) == "terminated" }, 30*time.Second, 50*time.Millisecond,
				"%s reads terminated on %s", id, n.name)
			types := eventTypes(t, n, id)
			assert.Equal(t, []string{"session.error"}, types)
			_, body := do(t, n.http, "GET", n.url("/v1/sessions/"+id+"/events"), "", nil)
			msg := body["data"].([]any)[0].(map[string]any)["error"].(map[string]any)["message"].(string)
			assert.Contains(t, msg, "node-2")
			status, _ := do(t, n.http, "POST", n.url("/v1/sessions/"+id+"/events"), "", map[string]any{
				"events": []any{map[string]any{"type": "user.interrupt"}}})
			assert.Equal(t, http.StatusServiceUnavailable, status, "a write to a lost node's session is refused")
		}
	}
	for _, id := range kept {
		assert.Equal(t, "idle", clusterSessionStatus(t, live[1], id))
	}
	got := rc.await(t, len(lost))
	assert.ElementsMatch(t, []string{"session.status_terminated " + lost[0], "session.status_terminated " + lost[1]}, got)
	marked, err := live[0].d.MarkLostSessions(func(n string) bool { return n != victim.name })
	require.NoError(t, err)
	assert.Empty(t, marked, "a second pass reports nothing again")
	for _, n := range live {
		assert.Equal(t, before, listAll(t, n, 2), "the list keeps every session once, in order")
	}

	// The node returns with its data: its records win again.
	victim.start(t)
	awaitNodes(t, nodes[0], 3)
	for _, id := range lost {
		for _, n := range live {
			require.Eventually(t, func() bool { return tryStatus(t, n, id) == "idle" }, 30*time.Second, 50*time.Millisecond)
			assert.Equal(t, eventTypes(t, victim, id), eventTypes(t, n, id), "forwarded to the returned owner again")
		}
	}
	for _, n := range nodes {
		assert.Equal(t, before, listAll(t, n, 3), "nothing duplicates after the reconcile")
	}
	h := rc
	h.mu.Lock()
	assert.Len(t, h.got, len(lost), "exactly one webhook per lost session")
	h.mu.Unlock()
}

func sessionNode(t *testing.T, n *localClusterNode, id string) string {
	status, body := do(t, n.http, "GET", n.url("/v1/sessions/"+id), "", nil)
	require.Equal(t, 200, status, "%v", body)
	node, _ := body["node"].(string)
	return node
}

func cordon(t *testing.T, via *localClusterNode, verb, node string) {
	status, body := do(t, via.http, "POST", via.url("/admin/cluster/"+verb), "", map[string]any{"node": node})
	require.Equal(t, 200, status, "%s %s: %v", verb, node, body)
}

// Placement: runs through any node land on the node with the most free
// slots, so thirty runs sent at once on three nodes of ten slots each fill
// every node exactly; a cordoned node gets none; a direct sessions.create is placed
// (forwarded) too, on the node where a slot was freed.
func TestClusterPlacementSpreadsSessions(t *testing.T) {
	nodes := startLocalCluster(t, 3, func(cfg *daemon.Config) { cfg.Local.MaxConcurrentSessions = 10 })
	for _, n := range nodes {
		n.d.PublishLoad()
	}
	status, dep := do(t, nodes[0].http, "POST", nodes[0].url("/v1/deployments"), "", map[string]any{
		"name": "busy", "agent": "agent_wait", "environment_id": "env_1",
		"initial_events": []any{map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": "work"}}}},
	})
	require.Equal(t, 200, status, "%v", dep)
	// Sent at once, ten through each node: each placement reserves its
	// slot (store/cluster_reserve.go), so they do not pile onto one node.
	per := runAtOnce(t, nodes, dep["id"].(string), 30)
	for _, n := range nodes {
		assert.Len(t, per[n.name], 10, "%s got %d of 30 sessions: %v", n.name, len(per[n.name]), per)
	}
	for _, ids := range per {
		for _, id := range ids { // every turn holds a slot: none waits for one
			require.Eventually(t, func() bool { return tryStatus(t, nodes[0], id) == "running" }, 30*time.Second, 20*time.Millisecond)
		}
	}

	// Every node is full; node-0 cordoned: the tenth waits elsewhere.
	cordon(t, nodes[2], "cordon", "node-0")
	status, run := do(t, nodes[0].http, "POST", nodes[0].url("/v1/deployments/"+dep["id"].(string)+"/run"), "", nil)
	require.Equal(t, 200, status, "%v", run)
	assert.NotEqual(t, "node-0", sessionNode(t, nodes[0], run["session_id"].(string)))
	cordon(t, nodes[2], "uncordon", "node-0")

	// A slot freed on node-2 (one of its sessions interrupted through
	// node-0): a direct sessions.create through node-0 is placed there.
	freed := per["node-2"][0]
	status, body := do(t, nodes[0].http, "POST", nodes[0].url("/v1/sessions/"+freed+"/events"), "", map[string]any{
		"events": []any{map[string]any{"type": "user.interrupt"}}})
	require.Equal(t, 200, status, "%v", body)
	require.Eventually(t, func() bool { return tryStatus(t, nodes[0], freed) == "idle" }, 30*time.Second, 20*time.Millisecond)
	nodes[2].d.PublishLoad()
	status, created := do(t, nodes[0].http, "POST", nodes[0].url("/v1/sessions"), "", map[string]any{
		"agent": "agent_wait", "environment_id": "env_1"})
	require.Equal(t, 200, status, "%v", created)
	assert.Equal(t, "node-2", created["node"], "placed where the slot was freed")
	assert.Equal(t, "node-2", sessionNode(t, nodes[1], created["id"].(string)))
}
