package local

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An idle event stored by an earlier version (no stop_details) is served
// with stop_details null; current events and other types are untouched.
func TestStoredIdleEventGainsStopDetails(t *testing.T) {
	key := append(eventPrefix("sesn_x"), be64(7)...)
	old := []byte(`{"id":"sevt_AbCdEfGhIjKlMnOpQrStUv","processed_at":"2026-01-02T03:04:05Z","stop_reason":{"type":"end_turn"},"type":"session.status_idle"}`)
	ev, err := decodeStoredEvent(key, old)
	require.NoError(t, err)
	var obj map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(ev.JSON, &obj))
	raw, ok := obj["stop_details"]
	require.True(t, ok, "stop_details missing in %s", ev.JSON)
	assert.Equal(t, "null", string(raw))
	assert.JSONEq(t, `{"type":"end_turn"}`, string(obj["stop_reason"]))
	assert.Equal(t, uint64(7), ev.Seq)

	current := idleEvent(stopReasonBudgetReached, time.Now())
	ev, err = decodeStoredEvent(key, current)
	require.NoError(t, err)
	assert.Equal(t, string(current), string(ev.JSON))
	assert.Contains(t, string(current), `"stop_details":null`)

	other := []byte(`{"id":"sevt_1","processed_at":"2026-01-02T03:04:05Z","type":"session.status_running"}`)
	ev, err = decodeStoredEvent(key, other)
	require.NoError(t, err)
	assert.Equal(t, string(other), string(ev.JSON))
}
