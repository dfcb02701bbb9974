package daemon_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The cost of reaching a session through another node (issue 26): a
// retrieve and a full replay of a 10,000-event stream, on the owner's
// socket (local) and on another node's socket (forwarded over loopback
// HTTP with the cluster key). Compare the pairs' ns/op for the ratio.
func BenchmarkClusterForwarding(b *testing.B) {
	nodes := startLocalCluster(b, 2)
	post := func(n *localClusterNode, path string, body any) map[string]any {
		data, _ := json.Marshal(body)
		req, err := http.NewRequest("POST", n.url(path), bytes.NewReader(data))
		require.NoError(b, err)
		req.Header.Set("anthropic-beta", "managed-agents-2026-04-01")
		req.Header.Set("Content-Type", "application/json")
		resp, err := n.http.Do(req)
		require.NoError(b, err)
		defer resp.Body.Close()
		var out map[string]any
		require.NoError(b, json.NewDecoder(resp.Body).Decode(&out))
		require.Equal(b, 200, resp.StatusCode, "%v", out)
		return out
	}
	dep := post(nodes[0], "/v1/deployments", map[string]any{
		"name": "bench", "agent": "agent_many", "environment_id": "env_1",
		"initial_events": []any{map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": "go"}}}},
	})
	run := post(nodes[0], "/v1/deployments/"+dep["id"].(string)+"/run", map[string]any{})
	id := run["session_id"].(string)
	get := func(n *localClusterNode, path string, hdr map[string]string) *http.Response {
		req, err := http.NewRequest("GET", n.url(path), nil)
		require.NoError(b, err)
		req.Header.Set("anthropic-beta", "managed-agents-2026-04-01")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := n.http.Do(req)
		require.NoError(b, err)
		return resp
	}
	var owner, other *localClusterNode
	require.Eventually(b, func() bool {
		resp := get(nodes[0], "/v1/sessions/"+id, nil)
		defer resp.Body.Close()
		var s map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&s)
		if s["status"] != "idle" {
			return false
		}
		owner, other = nodes[0], nodes[1]
		if s["node"] == nodes[1].name {
			owner, other = nodes[1], nodes[0]
		}
		return true
	}, 60e9, 50e6)

	for _, c := range []struct {
		name string
		via  *localClusterNode
	}{{"local", owner}, {"forwarded", other}} {
		b.Run("retrieve/"+c.name, func(b *testing.B) {
			for b.Loop() {
				resp := get(c.via, "/v1/sessions/"+id, nil)
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("HTTP %d", resp.StatusCode)
				}
			}
		})
		b.Run("stream10k/"+c.name, func(b *testing.B) {
			for b.Loop() {
				resp := get(c.via, "/v1/sessions/"+id+"/events/stream", map[string]string{"Last-Event-ID": "0"})
				sc := bufio.NewScanner(resp.Body)
				sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
				events := 0
				for sc.Scan() {
					if strings.HasPrefix(sc.Text(), "event: ") {
						events++
						if sc.Text() == "event: session.status_idle" {
							break
						}
					}
				}
				resp.Body.Close()
				if events < 10000 {
					b.Fatalf("only %d events", events)
				}
			}
		})
	}
}
