package daemon_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// `sandbox0d backup` on a cluster node (issue 25, point 8): the state is
// etcd's, so the node answers at once, before any stream, with how to take
// etcd's snapshot instead of a broken download.
func TestClusterBackupExplainsEtcdSnapshot(t *testing.T) {
	rig := newClusterRig(t, 1)
	resp, err := socketClient(rig.nodes[0].socket).Get("http://s/admin/backup")
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Contains(t, body.Error.Message, "store.type etcd")
	assert.Contains(t, body.Error.Message, "etcdctl --endpoints <store.etcd.endpoints> snapshot save FILE")
	assert.Contains(t, resp.Header.Get("Content-Type"), "json")
}
