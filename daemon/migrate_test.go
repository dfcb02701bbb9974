package daemon_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/store/storetest"
	"github.com/sandbox0/sandbox0d/webhooks"
)

// flakyHooks accepts deliveries unless refusing, and records every
// webhook-id it was offered.
type flakyHooks struct {
	refuse   atomic.Bool
	mu       sync.Mutex
	offered  []string
	accepted map[string]int
}

func (h *flakyHooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("webhook-id")
	h.mu.Lock()
	defer h.mu.Unlock()
	h.offered = append(h.offered, id)
	if h.refuse.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	h.accepted[id]++
}

func (h *flakyHooks) acceptedCount(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.accepted[id]
}

// A single box grows into a cluster and goes back (issue 25 item 8), with
// real parts throughout: a daemon on a bbolt file makes deployments with a
// sealed GitHub token, manual runs, an API key and webhook deliveries (one
// still pending); the file is migrated into an embedded three-member etcd;
// a node started on it serves it all through the official SDK (a page
// cursor issued before the migration, the API key, a manual run that opens
// the sealed token, the pending delivery retried with its webhook-id);
// then the prefix is migrated into a fresh file and a daemon on it serves
// the same. Each direction is also refused while the source is in use and
// when the target holds data.
func TestMigrateOneBoxIntoAClusterAndBack(t *testing.T) {
	hooks := &flakyHooks{accepted: map[string]int{}}
	srv := httptest.NewServer(hooks)
	t.Cleanup(srv.Close)
	backend := sessionstest.New(map[string]int64{"agent_a": 1})
	ctx := t.Context()

	dir := t.TempDir()
	cfg := baseConfig(dir)
	cfg.Listen = "127.0.0.1:0"
	cfg.Webhooks = webhooks.Config{Endpoints: []webhooks.EndpointConfig{{URL: srv.URL + "/hooks",
		SigningKey: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}, RetrySchedule: []time.Duration{time.Hour}}
	etcd := storetest.Start(t, 3)
	cfg.Store.Etcd = daemon.StoreEtcdConfig{ReadMirror: true, Endpoints: etcd.Endpoints(), Prefix: "/grown/", MaxTxnOps: 16,
		DialTimeout: 5 * time.Second, RequestTimeout: 5 * time.Second}

	// One box.
	box := start(t, cfg, daemon.Options{Backend: backend})
	c := box.client()
	var ids []string
	for i := range 5 {
		dep, err := c.Beta.Deployments.New(ctx, createParams(fmt.Sprint("box-", i))) // a sealed ghp_ token each
		require.NoError(t, err)
		ids = append(ids, dep.ID)
		_, err = c.Beta.Deployments.Run(ctx, dep.ID, anthropic.BetaDeploymentRunParams{})
		require.NoError(t, err)
	}
	status, created := do(t, socketClient(cfg.Socket), "POST", "http://s/admin/apikeys", "", map[string]any{"name": "ci"})
	require.Equal(t, 200, status)
	apiKey := created["key"].(string)
	page, err := c.Beta.Deployments.List(ctx, anthropic.BetaDeploymentListParams{Limit: anthropic.Int(2)})
	require.NoError(t, err)
	require.NotEmpty(t, page.NextPage)
	cursor := page.NextPage // issued by the box, used on the cluster and on the file after
	require.Eventually(t, func() bool { return box.d.WebhooksPending() == 0 }, 30*time.Second, 20*time.Millisecond)
	// The last event's delivery fails and stays pending (next attempt in an hour).
	hooks.refuse.Store(true)
	last, err := c.Beta.Deployments.New(ctx, createParams("box-last"))
	require.NoError(t, err)
	ids = append(ids, last.ID)
	var pendingID string
	require.Eventually(t, func() bool {
		hooks.mu.Lock()
		defer hooks.mu.Unlock()
		if len(hooks.offered) == 0 || hooks.accepted[hooks.offered[len(hooks.offered)-1]] > 0 {
			return false
		}
		pendingID = hooks.offered[len(hooks.offered)-1]
		return true
	}, 30*time.Second, 20*time.Millisecond)
	deliveredBefore := deliveries(t, cfg.Socket)
	require.Equal(t, "pending", deliveredBefore[pendingID])

	// Refused while the daemon holds the file.
	var out bytes.Buffer
	err = daemon.Migrate(cfg, daemon.MigrateRequest{To: "etcd"}, &out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "locked by a running sandbox0d: stop it first")
	box.stop(t)

	// Into the cluster.
	require.NoError(t, daemon.Migrate(cfg, daemon.MigrateRequest{To: "etcd"}, &out))
	t.Logf("migrate --to etcd:\n%s", out.String())
	assert.Regexp(t, `store\s+deployments\s+6\s+ok`, out.String())
	assert.Regexp(t, `store\s+runs\s+5\s+ok`, out.String())
	assert.Regexp(t, `store\s+api_keys\s+1\s+ok`, out.String())
	assert.Regexp(t, `session_index\s+\(all \d+ buckets\)\s+0\s+ok`, out.String())
	assert.Regexp(t, `catalog\s+\(all \d+ buckets\)\s+0\s+ok`, out.String(), "the API catalog is shared in a cluster, so migrate copies it")
	assert.Contains(t, out.String(), "Note: 1 webhook deliveries were pending")
	out.Reset()
	err = daemon.Migrate(cfg, daemon.MigrateRequest{To: "etcd"}, &out)
	require.Error(t, err, "never into a prefix that holds data")
	assert.Contains(t, err.Error(), "etcdctl del --prefix /grown/")

	nodeCfg := cfg
	nodeCfg.Store.Type = "etcd"
	nodeCfg.Cluster = daemon.ClusterConfig{NodeName: "node-0", LeaseTTL: 2 * time.Second}
	hooks.refuse.Store(false)
	node := start(t, nodeCfg, daemon.Options{Backend: backend})
	checkServesTheBox(t, node, nodeCfg, backend, ids, cursor, apiKey)
	assert.Equal(t, deliveredBefore, deliveriesByEvent(t, nodeCfg.Socket, deliveredBefore), "the delivery history came along")
	// The pending delivery is in etcd: retried, it arrives with its webhook-id.
	status, res := do(t, socketClient(nodeCfg.Socket), http.MethodPost, "http://s/admin/webhooks/events/"+pendingID+"/retry", "", map[string]any{})
	require.Equal(t, http.StatusOK, status, "%v", res)
	require.Eventually(t, func() bool { return hooks.acceptedCount(pendingID) == 1 }, 30*time.Second, 20*time.Millisecond)

	// The way back is refused while a node holds a lease on the prefix.
	backDir := t.TempDir()
	backFile := filepath.Join(backDir, "data", "sandbox0d.db")
	out.Reset()
	err = daemon.Migrate(nodeCfg, daemon.MigrateRequest{To: "bbolt", File: backFile}, &out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nodes node-0 still hold a lease")
	node.stop(t)
	require.Eventually(t, func() bool {
		out.Reset()
		err = daemon.Migrate(nodeCfg, daemon.MigrateRequest{To: "bbolt", File: backFile}, &out)
		return err == nil
	}, 30*time.Second, 200*time.Millisecond, "the node's key goes with its lease (revoked on a clean stop, else after cluster.lease_ttl)")
	t.Logf("migrate --to bbolt:\n%s", out.String())
	assert.Regexp(t, `store\s+deployments\s+\d+\s+ok`, out.String())
	assert.Contains(t, out.String(), "With this node's own namespaces (local)")
	err = daemon.Migrate(nodeCfg, daemon.MigrateRequest{To: "bbolt", File: backFile}, &out)
	require.Error(t, err, "never into a file that holds data")
	assert.Contains(t, err.Error(), "name a file that does not exist yet")

	// One box again, on the new file, with the same identity.
	backCfg := cfg
	backCfg.DataDir = filepath.Join(backDir, "data")
	backCfg.Socket = filepath.Join(backDir, "s.sock")
	backCfg.IdentityFile = filepath.Join(cfg.DataDir, "keys", "identity.age.txt")
	again := start(t, backCfg, daemon.Options{Backend: backend})
	checkServesTheBox(t, again, backCfg, backend, ids, cursor, apiKey)
	deliveredBefore[pendingID] = "delivered" // by the cluster
	assert.Equal(t, deliveredBefore, deliveriesByEvent(t, backCfg.Socket, deliveredBefore))
}

// checkServesTheBox reads what the box wrote through the official SDK.
func checkServesTheBox(t *testing.T, r *running, cfg daemon.Config, backend *sessionstest.Backend, ids []string, cursor, apiKey string) {
	t.Helper()
	ctx := t.Context()
	// Over TCP with the API key the box issued.
	c := anthropic.NewClient(option.WithBaseURL("http://"+r.d.TCPAddr().String()), option.WithAPIKey(apiKey), option.WithMaxRetries(0))
	for i, id := range ids {
		dep, err := c.Beta.Deployments.Get(ctx, id, anthropic.BetaDeploymentGetParams{})
		require.NoError(t, err)
		if i < 5 {
			assert.Equal(t, fmt.Sprint("box-", i), dep.Name)
		}
	}
	// The box's cursor, issued when box-4 and box-3 were the newest two.
	rest, err := c.Beta.Deployments.List(ctx, anthropic.BetaDeploymentListParams{Limit: anthropic.Int(2), Page: anthropic.String(cursor)})
	require.NoError(t, err, "a cursor issued before the migration")
	require.Len(t, rest.Data, 2)
	assert.Equal(t, []string{ids[2], ids[1]}, []string{rest.Data[0].ID, rest.Data[1].ID})
	runs, err := c.Beta.DeploymentRuns.List(ctx, anthropic.BetaDeploymentRunListParams{DeploymentID: anthropic.String(ids[0])})
	require.NoError(t, err)
	require.NotEmpty(t, runs.Data, "the box's runs")
	// A manual run opens the token the box sealed.
	_, err = c.Beta.Deployments.Run(ctx, ids[1], anthropic.BetaDeploymentRunParams{})
	require.NoError(t, err)
	reqs := backend.Requests()
	assert.Equal(t, "ghp_persist_me", reqs[len(reqs)-1].Resources[0].AuthorizationToken)
}

// deliveries maps each delivered event id to its status on the box.
func deliveries(t *testing.T, socket string) map[string]string {
	t.Helper()
	status, res := do(t, socketClient(socket), http.MethodGet, "http://s/admin/webhooks/deliveries?limit=100", "", nil)
	require.Equal(t, http.StatusOK, status, "%v", res)
	out := map[string]string{}
	for _, d := range res["data"].([]any) {
		m := d.(map[string]any)
		out[m["event_id"].(string)] = m["status"].(string)
	}
	require.NotEmpty(t, out)
	return out
}

// deliveriesByEvent is deliveries restricted to the events of want.
func deliveriesByEvent(t *testing.T, socket string, want map[string]string) map[string]string {
	all := deliveries(t, socket)
	out := map[string]string{}
	for id := range want {
		if s, ok := all[id]; ok {
			out[id] = s
		}
	}
	return out
}
