package deployments

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/sessions/sessionstest"
	"github.com/sandbox0/sandbox0d/store"
)

// rotatingSealer seals with a keyring and, like a `keys rotate` on another
// node landing between the seal and the write, records another recipient
// in the store right after sealing.
type rotatingSealer struct {
	k      *crypto.Keyring
	st     *store.Store
	rotate bool
}

func (r *rotatingSealer) Seal(o crypto.Owner, p []byte) ([]byte, error) { return r.k.Seal(o, p) }
func (r *rotatingSealer) Open(o crypto.Owner, b []byte) ([]byte, error) { return r.k.Open(o, b) }
func (r *rotatingSealer) SealTo(o crypto.Owner, p []byte) ([]byte, string, error) {
	b, err := r.k.Seal(o, p)
	if r.rotate {
		if err := r.st.Update(func(tx *store.Tx) error { return tx.SetSealRecipient("age1rotatedelsewhere") }); err != nil {
			return nil, "", err
		}
	}
	return b, r.k.PrimaryRecipient(), err
}

// A token sealed to the previous identity is never stored once a rotation
// recorded the new recipient: the write checks, in its own transaction,
// that the recipient the seal used is still the store's. Create, update
// and apply all go through the check.
func TestTokenSealedBeforeARotationIsNotStored(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{NoSync: true})
	require.NoError(t, err)
	defer st.Close()
	k, err := crypto.GenerateKeyring()
	require.NoError(t, err)
	sealer := &rotatingSealer{k: k, st: st}
	require.NoError(t, st.Update(func(tx *store.Tx) error { return tx.SetSealRecipient(k.PrimaryRecipient()) }))
	s := NewService(Config{Store: st, Backend: sessionstest.New(map[string]int64{"agent_a": 1}), Sealer: sealer})
	withToken := func(name string) CreateInput {
		data, _ := json.Marshal(map[string]any{
			"name": name, "agent": map[string]any{"id": "agent_a", "version": 1}, "environment_id": "env",
			"initial_events": []any{map[string]any{"type": "user.message", "content": []any{map[string]any{"type": "text", "text": "go"}}}},
			"schedule":       map[string]any{"type": "cron", "expression": "*/5 * * * *", "timezone": "UTC"},
			"resources":      []any{map[string]any{"type": "github_repository", "url": "https://github.com/acme/repo", "authorization_token": "ghp_x"}},
		})
		in, err := DecodeCreate(data)
		require.NoError(t, err)
		return in
	}
	d, err := s.Create(context.Background(), withToken("before"))
	require.NoError(t, err, "no rotation in between: stored")

	sealer.rotate = true
	_, err = s.Create(context.Background(), withToken("racing"))
	require.Error(t, err)
	assert.Equal(t, KindUnavailable, KindOf(err))
	assert.Contains(t, err.Error(), "a key rotation (keys rotate) committed while this request's tokens were being sealed")
	var n int
	require.NoError(t, st.View(func(tx *store.Tx) error {
		return tx.ForEachDeployment(func(string, []byte) error { n++; return nil })
	}))
	assert.Equal(t, 1, n, "the racing deployment was not stored")

	// An update carrying a token is refused the same way.
	raw, _ := json.Marshal(map[string]any{"resources": []any{map[string]any{"type": "github_repository", "url": "https://github.com/acme/repo", "authorization_token": "ghp_y"}}})
	up, err := DecodeUpdate(raw)
	require.NoError(t, err)
	_, err = s.Update(context.Background(), d.ID, up)
	require.Error(t, err)
	assert.Equal(t, KindUnavailable, KindOf(err))
}
