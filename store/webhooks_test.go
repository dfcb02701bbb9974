package store

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A namespace's write transaction appends to the same outbox, atomically
// with its own writes.
func TestNamespaceAppendsToTheOutbox(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), FileName), Options{})
	require.NoError(t, err)
	defer st.Close()
	ns, err := st.Namespace(NamespaceLocal)
	require.NoError(t, err)
	require.NoError(t, ns.Update(func(tx *NamespaceTx) error {
		if err := tx.Bucket("sessions").Put([]byte("sesn_1"), []byte("{}")); err != nil {
			return err
		}
		return tx.AppendWebhookEvent(WebhookEvent{ID: "wevt_1", Type: "session.created", ObjectID: "sesn_1", CreatedAt: time.Now()})
	}))
	require.NoError(t, st.View(func(tx *Tx) error {
		events, err := tx.OutboxWebhookEvents(10)
		require.NoError(t, err)
		require.Len(t, events, 1)
		assert.Equal(t, "sesn_1", events[0].ObjectID)
		return nil
	}))
	assert.Empty(t, st.Check())
}
