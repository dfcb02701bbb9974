package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/packages/param"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/store"
	"github.com/sandbox0/sandbox0d/store/storetest"
)

// Cluster mode (issue 25): three sandbox0d nodes in this process on one
// embedded three-member etcd cluster, each serving the API on its own
// socket (real HTTP), one backend behind them all (an upstream would be
// one service too). The clock is fake; the loop is woken after each step.

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

type clusterRig struct {
	etcd    *storetest.Cluster
	prefix  string
	clock   *fakeClock
	backend *gatedBackend
	nodes   []*running
}

// gatedBackend holds session creations while its gate is closed, so a test
// can act between fires' intents and their records.
type gatedBackend struct {
	*sessionstest.Backend
	mu      sync.Mutex
	gate    chan struct{} // nil: open
	waiting atomic.Int64
}

func (b *gatedBackend) close() {
	b.mu.Lock()
	b.gate = make(chan struct{})
	b.mu.Unlock()
}

func (b *gatedBackend) open() {
	b.mu.Lock()
	if b.gate != nil {
		close(b.gate)
		b.gate = nil
	}
	b.mu.Unlock()
}

func (b *gatedBackend) CreateSession(ctx context.Context, req sessions.CreateRequest) (string, error) {
	b.mu.Lock()
	gate := b.gate
	b.mu.Unlock()
	if gate != nil {
		b.waiting.Add(1)
		<-gate
	}
	return b.Backend.CreateSession(ctx, req)
}

func newClusterRig(t *testing.T, n int) *clusterRig {
	return newClusterRigOn(t, storetest.Start(t, 3), n)
}

func newClusterRigOn(t *testing.T, c *storetest.Cluster, n int) *clusterRig {
	rig := &clusterRig{etcd: c, prefix: "/cluster-test/",
		clock:   &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)},
		backend: &gatedBackend{Backend: sessionstest.New(map[string]int64{"agent_a": 1})}}
	for i := range n {
		rig.nodes = append(rig.nodes, rig.startNode(t, fmt.Sprintf("node-%d", i)))
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, r := range rig.nodes {
				t.Logf("node-%d log:\n%s", i, r.logs.String())
			}
		}
	})
	return rig
}

func (rig *clusterRig) startNode(t *testing.T, name string) *running {
	return rig.startNodeWith(t, name, rig.clock.Now)
}

// startNodeWith starts a node on its own clock (nodes' clocks differ a
// little in a real cluster).
func (rig *clusterRig) startNodeWith(t *testing.T, name string, now func() time.Time) *running {
	dir := t.TempDir()
	cfg := baseConfig(dir)
	cfg.Socket = filepath.Join(dir, "s.sock")
	cfg.Store = daemon.StoreConfig{Type: "etcd", Etcd: daemon.StoreEtcdConfig{ReadMirror: true, Endpoints: rig.etcd.Endpoints(), Prefix: rig.prefix,
		DialTimeout: 5 * time.Second, RequestTimeout: 5 * time.Second}}
	cfg.Cluster = daemon.ClusterConfig{NodeName: name, LeaseTTL: 2 * time.Second}
	cfg.Schedule.Workers = 64 // a whole burst in flight at once
	logs := &syncBuffer{}
	d, err := daemon.New(cfg, slog.New(slog.NewTextHandler(logs, nil)), daemon.Options{Backend: rig.backend, Now: now})
	require.NoError(t, err)
	return startDaemon(t, d, cfg, logs)
}

// leader waits for exactly one live node to lead with its plans loaded.
func (rig *clusterRig) leader(t *testing.T, live []*running) *running {
	var lead *running
	require.Eventually(t, func() bool {
		lead = nil
		n := 0
		for _, r := range live {
			if r.d.TermLoaded() {
				lead, n = r, n+1
			}
		}
		return n == 1
	}, 30*time.Second, 20*time.Millisecond, "one leader among the live nodes")
	return lead
}

func minutelyParams(name string) anthropic.BetaDeploymentNewParams {
	return anthropic.BetaDeploymentNewParams{
		Name:          name,
		Agent:         anthropic.BetaDeploymentNewParamsAgentUnion{OfString: param.NewOpt("agent_a")},
		EnvironmentID: "env_1",
		InitialEvents: []anthropic.BetaManagedAgentsDeploymentInitialEventParamsUnion{{
			OfUserMessage: &anthropic.BetaManagedAgentsUserMessageEventParams{Content: []anthropic.BetaManagedAgentsUserMessageEventParamsContentUnion{
				{OfText: &anthropic.BetaManagedAgentsTextBlockParam{Text: "hello"}}}}}},
		Schedule: anthropic.BetaManagedAgentsScheduleParams{Expression: "* * * * *", Timezone: "UTC"},
	}
}

// scheduledRuns maps scheduled_at → how many runs the deployment has for it.
func scheduledRuns(t *testing.T, r *running, deploymentID string) map[string]int {
	out := map[string]int{}
	c := r.client()
	pager := c.Beta.DeploymentRuns.ListAutoPaging(t.Context(), anthropic.BetaDeploymentRunListParams{
		DeploymentID: anthropic.String(deploymentID), Limit: anthropic.Int(100)})
	for pager.Next() {
		var raw struct {
			Trigger struct {
				ScheduledAt *time.Time `json:"scheduled_at"`
			} `json:"trigger_context"`
		}
		require.NoError(t, json.Unmarshal([]byte(pager.Current().RawJSON()), &raw))
		if raw.Trigger.ScheduledAt != nil {
			out[raw.Trigger.ScheduledAt.UTC().Format("15:04")]++
		}
	}
	require.NoError(t, pager.Err())
	return out
}

// Any node serves the whole API: a deployment created on one node is read
// on the others at once, and a page cursor issued by one works on another.
func TestClusterEveryNodeServesTheSameState(t *testing.T) {
	rig := newClusterRig(t, 3)
	a, b, c := rig.nodes[0].client(), rig.nodes[1].client(), rig.nodes[2].client()
	ctx := t.Context()
	var ids []string
	for i := range 3 {
		dep, err := a.Beta.Deployments.New(ctx, minutelyParams(fmt.Sprint("d", i)))
		require.NoError(t, err)
		ids = append(ids, dep.ID)
	}
	got, err := b.Beta.Deployments.Get(ctx, ids[0], anthropic.BetaDeploymentGetParams{})
	require.NoError(t, err, "read on node B right after node A acknowledged the write")
	assert.Equal(t, "d0", got.Name)
	page, err := b.Beta.Deployments.List(ctx, anthropic.BetaDeploymentListParams{Limit: anthropic.Int(2)})
	require.NoError(t, err)
	require.Len(t, page.Data, 2)
	require.NotEmpty(t, page.NextPage)
	rest, err := c.Beta.Deployments.List(ctx, anthropic.BetaDeploymentListParams{Limit: anthropic.Int(2), Page: anthropic.String(page.NextPage)})
	require.NoError(t, err, "node B's cursor works on node C")
	require.Len(t, rest.Data, 1)
	assert.Equal(t, ids[0], rest.Data[0].ID)

	// Paused on node C: the leader, whichever node it is, stops firing it.
	_, err = c.Beta.Deployments.Pause(ctx, ids[1], anthropic.BetaDeploymentPauseParams{})
	require.NoError(t, err)
	lead := rig.leader(t, rig.nodes)
	rig.clock.Set(time.Date(2026, 3, 1, 12, 1, 1, 0, time.UTC))
	lead.d.WakeScheduler()
	require.Eventually(t, func() bool {
		return scheduledRuns(t, rig.nodes[2], ids[0])["12:01"] == 1 && scheduledRuns(t, rig.nodes[2], ids[2])["12:01"] == 1
	}, 30*time.Second, 50*time.Millisecond)
	assert.Empty(t, scheduledRuns(t, rig.nodes[0], ids[1]), "the paused one did not fire")
}

// A * * * * * deployment keeps firing, once per minute, while the leader
// node is stopped hard (its etcd client cut, its lease left to lapse) just
// before each minute; the next leader fires the missed minute within
// schedule.misfire_grace.
func TestClusterKeepsFiringWhileLeadersDie(t *testing.T) {
	keepsFiringWhileLeadersDie(t, newClusterRig(t, 3))
}

// The same against etcd as Debian ships it (etcd-server 3.4, three
// processes), when it is installed (.ci/run installs it).
func TestClusterOnDebianEtcd(t *testing.T) {
	t.Logf("etcd %s", storetest.ExternalVersion())
	t.Run("keeps firing while leaders die", func(t *testing.T) {
		keepsFiringWhileLeadersDie(t, newClusterRigOn(t, storetest.StartExternal(t, 3), 3))
	})
	t.Run("raft leader stopped mid-burst", func(t *testing.T) {
		raftLeaderStoppedMidBurst(t, newClusterRigOn(t, storetest.StartExternal(t, 3), 2))
	})
}

func keepsFiringWhileLeadersDie(t *testing.T, rig *clusterRig) {
	c0 := rig.nodes[0].client()
	dep, err := c0.Beta.Deployments.New(t.Context(), minutelyParams("minutely"))
	require.NoError(t, err)
	live := append([]*running(nil), rig.nodes...)
	for minute := 1; minute <= 3; minute++ {
		lead := rig.leader(t, live)
		if minute > 1 {
			// Stopped hard just before the minute.
			rig.clock.Set(time.Date(2026, 3, 1, 12, minute-1, 59, 0, time.UTC))
			lead.d.CrashStore()
			lead.stop(t)
			for i, r := range live {
				if r == lead {
					live = append(live[:i], live[i+1:]...)
					break
				}
			}
			lead = rig.leader(t, live)
		}
		rig.clock.Set(time.Date(2026, 3, 1, 12, minute, 1, 0, time.UTC))
		lead.d.WakeScheduler()
		want := fmt.Sprintf("12:%02d", minute)
		require.Eventually(t, func() bool { return scheduledRuns(t, live[0], dep.ID)[want] == 1 },
			30*time.Second, 50*time.Millisecond, "minute %s fired", want)
	}
	runs := scheduledRuns(t, live[0], dep.ID)
	assert.Equal(t, map[string]int{"12:01": 1, "12:02": 1, "12:03": 1}, runs, "every minute exactly once")
}

// A deposed leader that still believes it leads (paused while its lease
// lapsed) cannot fire: its claim and intent are fenced by its election key.
func TestClusterStaleLeaderIsFenced(t *testing.T) {
	rig := newClusterRig(t, 2)
	c0 := rig.nodes[0].client()
	dep, err := c0.Beta.Deployments.New(t.Context(), minutelyParams("fenced"))
	require.NoError(t, err)
	old := rig.leader(t, rig.nodes)
	other := rig.nodes[0]
	if other == old {
		other = rig.nodes[1]
	}
	// The lease lapses under the old leader (revoked from outside, as etcd
	// does when renewals stop); the other node takes over.
	lease := old.d.ClusterLease()
	require.NotZero(t, lease)
	rig.etcd.RevokeLease(t, lease)
	rig.leader(t, []*running{other})
	// The old leader's service still holds the old fence.
	_, err = old.d.Fire(dep.ID, time.Date(2026, 3, 1, 12, 1, 0, 0, time.UTC), 1)
	require.ErrorIs(t, err, store.ErrFenced)
	assert.Empty(t, scheduledRuns(t, other, dep.ID), "no run for the refused fire")
}

// The etcd raft leader stops in the middle of a burst of fires: the writes
// in flight are retried on the new raft leader, and every deployment has
// exactly one run for the minute.
func TestClusterRaftLeaderStoppedMidBurst(t *testing.T) {
	raftLeaderStoppedMidBurst(t, newClusterRig(t, 2))
}

func raftLeaderStoppedMidBurst(t *testing.T, rig *clusterRig) {
	c := rig.nodes[0].client()
	var ids []string
	for i := range 30 {
		dep, err := c.Beta.Deployments.New(t.Context(), minutelyParams(fmt.Sprint("burst", i)))
		require.NoError(t, err)
		ids = append(ids, dep.ID)
	}
	lead := rig.leader(t, rig.nodes)
	before := rig.backend.Created()
	// Every fire commits its claim and intent, then waits at the backend:
	// the raft leader stops between the intents and the records.
	rig.backend.close()
	rig.clock.Set(time.Date(2026, 3, 1, 12, 1, 1, 0, time.UTC))
	lead.d.WakeScheduler()
	require.Eventually(t, func() bool { return rig.backend.waiting.Load() == int64(len(ids)) }, 30*time.Second, time.Millisecond)
	raft := rig.etcd.Leader()
	require.GreaterOrEqual(t, raft, 0)
	rig.etcd.StopMember(raft)
	rig.backend.open()
	require.Eventually(t, func() bool {
		for _, id := range ids {
			if scheduledRuns(t, rig.nodes[1], id)["12:01"] != 1 {
				return false
			}
		}
		return true
	}, 60*time.Second, 100*time.Millisecond, "every deployment recorded once for 12:01")
	for _, id := range ids {
		assert.Equal(t, map[string]int{"12:01": 1}, scheduledRuns(t, rig.nodes[1], id))
	}
	assert.Equal(t, before+int64(len(ids)), rig.backend.Created(), "no session created twice")
}

func socketGet(t *testing.T, r *running, path string) (int, string) {
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", r.socket)
	}}}
	req, err := http.NewRequest(http.MethodGet, "http://sandbox0d"+path, nil)
	require.NoError(t, err)
	req.Header.Set("anthropic-beta", "managed-agents-2026-04-01")
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// GET /admin/cluster and the metrics say who leads, on every node.
func TestClusterStatusAndMetrics(t *testing.T) {
	rig := newClusterRig(t, 3)
	lead := rig.leader(t, rig.nodes)
	require.Eventually(t, func() bool {
		_, body := socketGet(t, rig.nodes[0], "/admin/cluster")
		var st daemon.ClusterStatus
		return json.Unmarshal([]byte(body), &st) == nil && len(st.Nodes) == 3
	}, 30*time.Second, 50*time.Millisecond, "every node has published itself")
	for _, r := range rig.nodes {
		code, body := socketGet(t, r, "/admin/cluster")
		require.Equal(t, http.StatusOK, code, body)
		var st daemon.ClusterStatus
		require.NoError(t, json.Unmarshal([]byte(body), &st))
		assert.Equal(t, "etcd", st.Engine)
		assert.Len(t, st.Nodes, 3)
		assert.Len(t, st.Endpoints, 3)
		for _, e := range st.Endpoints {
			assert.True(t, e.Healthy, e.URL)
		}
		wantRole := "follower"
		if r == lead {
			wantRole = "leader"
		}
		assert.Equal(t, wantRole, st.Role)
		_, metrics := socketGet(t, r, "/metrics")
		want := "sandbox0d_cluster_leader 0"
		if r == lead {
			want = "sandbox0d_cluster_leader 1"
		}
		assert.Contains(t, metrics, want)
		assert.Contains(t, metrics, `sandbox0d_store_request_duration_seconds_count{op="view"}`)
	}
	code, body := socketGet(t, rig.nodes[0], "/admin/cluster")
	require.Equal(t, http.StatusOK, code)
	var st daemon.ClusterStatus
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	assert.Equal(t, lead.d.NodeNameForTest(), st.Leader)
}

// etcd unreachable: at start a clear error naming the endpoints; during a
// request a 503 naming etcd within the request timeout, and /readyz fails;
// once etcd is back, the same process serves again.
func TestClusterEtcdOutage(t *testing.T) {
	dir := t.TempDir()
	cfg := baseConfig(dir)
	cfg.Store = daemon.StoreConfig{Type: "etcd", Etcd: daemon.StoreEtcdConfig{ReadMirror: true, Endpoints: []string{"http://127.0.0.1:1"}, Prefix: "/o/",
		DialTimeout: 300 * time.Millisecond}}
	cfg.Cluster = daemon.ClusterConfig{NodeName: "n", LeaseTTL: 2 * time.Second}
	_, err := daemon.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), daemon.Options{Backend: sessionstest.New(nil)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "http://127.0.0.1:1")
	assert.Contains(t, err.Error(), "store.etcd.endpoints")

	rig := newClusterRigOn(t, storetest.Start(t, 1), 0)
	cfg = baseConfig(t.TempDir())
	cfg.Store = daemon.StoreConfig{Type: "etcd", Etcd: daemon.StoreEtcdConfig{ReadMirror: true, Endpoints: rig.etcd.Endpoints(), Prefix: "/o/",
		DialTimeout: 2 * time.Second, RequestTimeout: 700 * time.Millisecond}}
	cfg.Cluster = daemon.ClusterConfig{NodeName: "n", LeaseTTL: 2 * time.Second}
	d, err := daemon.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), daemon.Options{Backend: rig.backend, Now: rig.clock.Now})
	require.NoError(t, err)
	r := startExisting(t, d, cfg)
	code, _ := socketGet(t, r, "/v1/deployments")
	require.Equal(t, http.StatusOK, code)

	rig.etcd.StopMember(0)
	start := time.Now()
	code, body := socketGet(t, r, "/v1/deployments")
	assert.Equal(t, http.StatusServiceUnavailable, code, body)
	assert.Contains(t, body, "etcd")
	assert.Less(t, time.Since(start), 10*time.Second, "answered, not hung")
	code, body = socketGet(t, r, "/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code, body)
	assert.Contains(t, body, "etcd")

	require.NoError(t, rig.etcd.RestartMember(0))
	require.Eventually(t, func() bool {
		code, _ := socketGet(t, r, "/v1/deployments")
		return code == http.StatusOK
	}, 30*time.Second, 100*time.Millisecond, "serving again without a restart")
}
