package daemon

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandbox0/sandbox0d/store"
)

// Access control: callers on the Unix socket are trusted (the socket's file
// mode decides who may connect); TCP callers must present an API key. Keys
// are stored hashed; a presented key is hashed and compared in constant time
// against every known hash, so neither timing nor an early exit tells which
// key was close.

type connKind int

const (
	connTCP connKind = iota
	connSocket
)

type connKindKey struct{}

// withConnKind tags every request on a listener with how it arrived.
func withConnKind(kind connKind) func(ctx context.Context, _ net.Conn) context.Context {
	return func(ctx context.Context, _ net.Conn) context.Context {
		return context.WithValue(ctx, connKindKey{}, kind)
	}
}

func viaSocket(r *http.Request) bool {
	kind, ok := r.Context().Value(connKindKey{}).(connKind)
	return ok && kind == connSocket
}

type knownKey struct {
	id   string
	hash [sha256.Size]byte
	// lastUsed (unix nanoseconds, 0: not since start) is kept in memory
	// only, so a request never costs a database write; it is an atomic so
	// a request costs no allocation either. Reloads keep the counter of a
	// key that stays.
	lastUsed *atomic.Int64
}

// Authenticator holds the hashes of every valid API key.
type Authenticator struct {
	mu   sync.RWMutex
	keys []knownKey
	// used holds every key id's last-use counter seen since start, so a
	// revoked key still reports when it was last used.
	used map[string]*atomic.Int64
}

// HashKey is how keys are stored.
func HashKey(key string) [sha256.Size]byte { return sha256.Sum256([]byte(key)) }

// NewAPIKey returns a fresh secret key ("s0d_" + 256 random bits).
func NewAPIKey() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "s0d_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// Load replaces the known keys: configured keys (plain, from config, env or
// a file) and stored, unrevoked key records.
func (a *Authenticator) Load(configured []string, stored []store.APIKey) {
	var keys []knownKey
	for i, k := range configured {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, knownKey{id: fmt.Sprintf("config[%d]", i), hash: HashKey(k)})
		}
	}
	for _, k := range stored {
		if k.RevokedAt == nil && len(k.Hash) == sha256.Size {
			var h [sha256.Size]byte
			copy(h[:], k.Hash)
			keys = append(keys, knownKey{id: k.ID, hash: h})
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.used == nil {
		a.used = map[string]*atomic.Int64{}
	}
	for i := range keys {
		if keys[i].lastUsed = a.used[keys[i].id]; keys[i].lastUsed == nil {
			keys[i].lastUsed = new(atomic.Int64)
			a.used[keys[i].id] = keys[i].lastUsed
		}
	}
	a.keys = keys
}

// Count is the number of usable keys.
func (a *Authenticator) Count() int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return len(a.keys)
}

// Check reports whether presented is a valid key.
func (a *Authenticator) Check(presented string) bool {
	if presented == "" {
		return false
	}
	h := HashKey(presented)
	a.mu.RLock()
	defer a.mu.RUnlock()
	match, matched := 0, -1
	for i, k := range a.keys {
		eq := subtle.ConstantTimeCompare(h[:], k.hash[:])
		match |= eq
		matched = subtle.ConstantTimeSelect(eq, i, matched)
	}
	if match == 1 {
		a.keys[matched].lastUsed.Store(time.Now().UnixNano())
	}
	return match == 1
}

// LastUsed returns when a key last authenticated a request in this process.
func (a *Authenticator) LastUsed(id string) (time.Time, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if c := a.used[id]; c != nil {
		if ns := c.Load(); ns != 0 {
			return time.Unix(0, ns).UTC(), true
		}
	}
	return time.Time{}, false
}

// presentedKey reads x-api-key or Authorization: Bearer.
func presentedKey(r *http.Request) string {
	if k := r.Header.Get("X-Api-Key"); k != "" {
		return k
	}
	if auth := r.Header.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		return strings.TrimSpace(auth[7:])
	}
	return ""
}

// authorize is the API's gate for /v1 routes.
func (a *Authenticator) authorize(r *http.Request) (bool, string) {
	if viaSocket(r) {
		return true, ""
	}
	key := presentedKey(r)
	if key == "" {
		return false, "an API key is required on TCP: send it as x-api-key or Authorization: Bearer"
	}
	if !a.Check(key) {
		return false, "invalid or revoked API key"
	}
	return true, ""
}

// readKeyFile reads one key per line; blank lines and # comments are skipped.
func readKeyFile(path string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config auth.api_keys_file: %w", err)
	}
	defer f.Close()
	var keys []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			keys = append(keys, line)
		}
	}
	return keys, sc.Err()
}

// checkExposure refuses a TCP listener beyond loopback unless callers must
// present a key over TLS (or the operator explicitly allowed plaintext, e.g.
// behind a TLS-terminating proxy).
func checkExposure(addr net.Addr, keys int, tls, allowPlaintext bool) error {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP.IsLoopback() {
		return nil
	}
	if keys == 0 {
		return fmt.Errorf("refusing to listen on %s: it is reachable beyond loopback and no API key exists; create one over the socket (sandbox0d apikeys create) or set auth.api_keys, or listen on 127.0.0.1", addr)
	}
	if !tls && !allowPlaintext {
		return fmt.Errorf("refusing to listen on %s without TLS: API keys would cross the network in plaintext; set --tls-cert/--tls-key, or auth.allow_plaintext_tcp: true behind a TLS-terminating proxy", addr)
	}
	return nil
}
