package deployments

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/store"
)

// Regression: SealedSecrets swallowed read and decode errors, so startup saw
// "no secrets" in a database it could not read and accepted any identity.
func TestSealedSecretsReportsUnreadableDocuments(t *testing.T) {
	s, st := newTestService(t, filepath.Join(t.TempDir(), "db"), sessionstest.New(map[string]int64{"agent_a": 1}))
	defer st.Close()
	createScheduled(t, s)
	sealed, err := SealedSecrets(st)
	require.NoError(t, err)
	n := 0
	for range sealed {
		n++
	}
	assert.Zero(t, n, "createScheduled stores no token")

	require.NoError(t, st.Update(func(tx *store.Tx) error {
		return tx.PutDeployment(store.DeploymentIndex{ID: "depl_broken", CreatedAt: time.Now()}, []byte("{not json"))
	}))
	_, err = SealedSecrets(st)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "depl_broken")
}
