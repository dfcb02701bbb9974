package daemon_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/daemon"
)

// Simultaneous placements (issue 26): thirty manual runs sent at once,
// ten through each of three nodes of ten slots, land exactly ten on each
// node. Without reservations they read the same loads and pile onto the
// same node.
func TestClusterConcurrentPlacementsReserveSlots(t *testing.T) {
	nodes := startLocalCluster(t, 3, func(cfg *daemon.Config) { cfg.Local.MaxConcurrentSessions = 10 })
	for _, n := range nodes {
		n.d.PublishLoad()
	}
	status, dep := do(t, nodes[0].http, "POST", nodes[0].url("/v1/deployments"), "", map[string]any{
		"name": "burst", "agent": "agent_wait", "environment_id": "env_1",
		"initial_events": []any{map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": "work"}}}},
	})
	require.Equal(t, 200, status, "%v", dep)
	type result struct {
		via string
		id  string
		err error
	}
	results := make([]result, 30)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range results {
		via := nodes[i%3]
		wg.Go(func() {
			<-start
			req, err := http.NewRequest("POST", via.url("/v1/deployments/"+dep["id"].(string)+"/run"), bytes.NewReader(nil))
			if err != nil {
				results[i].err = err
				return
			}
			req.Header.Set("anthropic-beta", "managed-agents-2026-04-01")
			resp, err := via.http.Do(req)
			if err != nil {
				results[i].err = err
				return
			}
			defer resp.Body.Close()
			var body map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
				results[i].err = fmt.Errorf("HTTP %d: %v %v", resp.StatusCode, body, err)
				return
			}
			id, _ := body["session_id"].(string)
			results[i] = result{via: via.name, id: id}
		})
	}
	close(start)
	wg.Wait()
	per := map[string][]string{}
	for _, r := range results {
		require.NoError(t, r.err)
		require.NotEmpty(t, r.id)
		node := sessionNode(t, nodes[0], r.id)
		per[node] = append(per[node], r.id)
	}
	for _, n := range nodes {
		assert.Len(t, per[n.name], 10, "%s got %d of 30 sessions", n.name, len(per[n.name]))
	}
	// Every turn holds a slot: none waits for one.
	for _, n := range nodes {
		for _, id := range per[n.name] {
			require.Eventually(t, func() bool { return tryStatus(t, nodes[0], id) == "running" }, 30*time.Second, 20*time.Millisecond)
		}
	}
}
