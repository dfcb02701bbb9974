package deployments_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/store"
)

const killChildEnv = "SANDBOX0D_APPLY_KILL_CHILD"

// applyBody is a set of n documents whose names all carry version v.
func applyBody(n int, v int) []byte {
	docs := make([]map[string]any, n)
	for i := range docs {
		docs[i] = map[string]any{"key": fmt.Sprintf("jobs/%03d.yaml", i), "definition": map[string]any{
			"name": fmt.Sprintf("job %d v%d", i, v), "agent": "agent_a", "environment_id": "env_1",
			"initial_events": []any{map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": "go"}}}},
			"schedule":       map[string]any{"type": "cron", "expression": "0 9 * * *", "timezone": "UTC"},
		}}
	}
	data, _ := json.Marshal(map[string]any{"deployments": docs})
	return data
}

// TestApplyKillChild is the child of TestApplyKill9LeavesOldOrNew: it
// applies 500 documents again and again, each time a new version of all of
// them, on a real (fsynced) bbolt file, until it is killed.
func TestApplyKillChild(t *testing.T) {
	path := os.Getenv(killChildEnv)
	if path == "" {
		t.Skip("the child of TestApplyKill9LeavesOldOrNew")
	}
	st, err := store.Open(path, store.Options{})
	require.NoError(t, err)
	svc := deployments.NewService(deployments.Config{Store: st, Backend: sessionstest.New(map[string]int64{"agent_a": 1})})
	for v := 1; ; v++ {
		req, err := deployments.DecodeApply(applyBody(500, v))
		require.NoError(t, err)
		fmt.Printf("applying %d\n", v)
		_, err = svc.Apply(context.Background(), "default", req, true)
		require.NoError(t, err)
		fmt.Printf("applied %d\n", v)
	}
}

// kill -9 during an apply of 500 documents leaves the old or the new state,
// never a mix: the apply is one bbolt transaction. The child is killed as
// it starts an apply, at several points of its life.
func TestApplyKill9LeavesOldOrNew(t *testing.T) {
	if os.Getenv(killChildEnv) != "" {
		t.Skip("in the child")
	}
	path := filepath.Join(t.TempDir(), "apply.db")
	for round, killAt := range []int{1, 3, 6} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestApplyKillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), killChildEnv+"="+path)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		lines := bufio.NewScanner(out)
		before := 0
		for lines.Scan() {
			var v int
			if _, err := fmt.Sscanf(lines.Text(), "applying %d", &v); err == nil && v > killAt {
				break // the apply of version v has just started
			}
			if _, err := fmt.Sscanf(lines.Text(), "applied %d", &v); err == nil {
				before = v
			}
		}
		require.NoError(t, cmd.Process.Kill()) // SIGKILL
		_ = cmd.Wait()
		require.Equal(t, killAt, before, "round %d: the child applied up to the kill point", round)

		st, err := store.Open(path, store.Options{})
		require.NoError(t, err)
		require.Empty(t, st.Check(), "bbolt consistency check")
		versions := map[string]int{}
		require.NoError(t, st.View(func(tx *store.Tx) error {
			return tx.ForEachDeployment(func(_ string, doc []byte) error {
				var d deployments.Deployment
				if err := json.Unmarshal(doc, &d); err != nil {
					return err
				}
				if d.ArchivedAt == nil {
					versions[d.Name[strings.LastIndex(d.Name, " ")+1:]]++
				}
				return nil
			})
		}))
		require.NoError(t, st.Close())
		require.Len(t, versions, 1, "round %d: one version for the whole set, got %v", round, versions)
		for v, n := range versions {
			require.Equal(t, 500, n, "round %d: all 500 deployments at %s", round, v)
			// The kill came during or before the next commit: the old or the new version.
			require.Contains(t, []string{fmt.Sprintf("v%d", killAt), fmt.Sprintf("v%d", killAt+1)}, v)
		}
	}
}
