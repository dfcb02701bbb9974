package daemon_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// runAtOnce sends n manual runs of dep at the same instant, in turn through
// each node, and returns the sessions by the node that owns them.
func runAtOnce(t *testing.T, nodes []*localClusterNode, dep string, n int) map[string][]string {
	type result struct {
		id  string
		err error
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range results {
		via := nodes[i%len(nodes)]
		wg.Go(func() {
			<-start
			req, err := http.NewRequest("POST", via.url("/v1/deployments/"+dep+"/run"), bytes.NewReader(nil))
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
				results[i].err = fmt.Errorf("run through %s: HTTP %d: %v %v", via.name, resp.StatusCode, body, err)
				return
			}
			results[i].id, _ = body["session_id"].(string)
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
	return per
}
