package crypto

import (
	"bytes"
	"iter"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// testToken looks like a GitHub token so a leak is easy to spot in failures.
const testToken = "ghp_TESTtokenDoNotLeak0123456789abcdefXYZ"

// capturedLogger returns a logger writing text lines into the returned buffer.
func capturedLogger() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

// identityLines returns the secret-key lines of an identity file on disk.
func identityLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var keys []string
	for line := range strings.Lines(string(data)) {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "AGE-SECRET-KEY-") {
			keys = append(keys, line)
		}
	}
	return keys
}

// newIdentityFile creates an identity file with one identity in a temp data dir.
func newIdentityFile(t *testing.T) (string, *Keyring) {
	t.Helper()
	path := filepath.Join(t.TempDir(), DefaultIdentityFile)
	k, created, err := LoadOrCreateKeyring(path, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.True(t, created)
	return path, k
}

// fakeSecretStore stands in for the bbolt store: owner → sealed blob. Its
// resealAll replaces the whole map at once, like one bbolt transaction.
type fakeSecretStore struct {
	sealed map[Owner][]byte
}

func newFakeSecretStore() *fakeSecretStore {
	return &fakeSecretStore{sealed: map[Owner][]byte{}}
}

func (s *fakeSecretStore) put(t *testing.T, k *Keyring, owner Owner, plaintext string) {
	t.Helper()
	blob, err := k.Seal(owner, []byte(plaintext))
	require.NoError(t, err)
	s.sealed[owner] = blob
}

// all yields secrets in a stable order.
func (s *fakeSecretStore) all() iter.Seq2[Owner, []byte] {
	return func(yield func(Owner, []byte) bool) {
		owners := slices.SortedFunc(maps.Keys(s.sealed), func(a, b Owner) int {
			return strings.Compare(a.String(), b.String())
		})
		for _, o := range owners {
			if !yield(o, s.sealed[o]) {
				return
			}
		}
	}
}

// resealAll re-seals every secret into a new map and swaps it in only if all
// succeeded, which is what one bbolt transaction gives the real store.
func (s *fakeSecretStore) resealAll(next *Keyring) error {
	resealed := make(map[Owner][]byte, len(s.sealed))
	for owner, blob := range s.sealed {
		fresh, err := next.Reseal(owner, blob)
		if err != nil {
			return err
		}
		resealed[owner] = fresh
	}
	s.sealed = resealed
	return nil
}

// requireAllOpen asserts every stored secret opens with the identity file on disk.
func (s *fakeSecretStore) requireAllOpen(t *testing.T, path string, want map[Owner]string) {
	t.Helper()
	onDisk, err := LoadKeyring(path)
	require.NoError(t, err)
	for owner, blob := range s.sealed {
		plaintext, err := onDisk.Open(owner, blob)
		require.NoError(t, err, "secret %s must open with the identity file on disk", owner)
		require.Equal(t, want[owner], string(plaintext))
	}
}
