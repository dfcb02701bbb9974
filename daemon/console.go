package daemon

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/sandbox0/sandbox0d/console"
	"github.com/sandbox0/sandbox0d/httpapi"
	"github.com/sandbox0/sandbox0d/store"
)

// The console is mounted beside the API, not inside echo: its forms are
// not JSON (the API's strict-body check would refuse them) and its access
// rules are its own (console.needAuth). The JSON API never reads the
// console's cookie.

func (d *Daemon) buildConsole(cfg Config) *console.Console {
	if !cfg.Console.Enabled {
		return nil
	}
	cc := console.Config{
		// In a cluster the console reads sessions as the API does: the list
		// from the session index, a session and its live transcript
		// forwarded to the node that owns it (issue 26).
		Service: d.svc, Sessions: d.forwardSessions(httpapi.SessionHandler(d.backend)), Webhooks: d.hooks,
		Keys: &d.auth, Trusted: viaSocket, AllowedHosts: func() []string { return d.config().Console.AllowedHosts }, Logger: d.log,
	}
	if d.store.Engine() == "etcd" {
		cc.Cluster = func(ctx context.Context) (store.Status, []store.NodeLoad, error) {
			st, err := d.clusterStatus(ctx) // GET /admin/cluster's source
			return st.Status, st.Loads, err
		}
	}
	return console.New(cc)
}

// rootHandler sends /console… to the console and the rest to the API.
func (d *Daemon) rootHandler() http.Handler {
	if d.console == nil {
		return d.echo
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if console.Handles(r.URL.Path) {
			d.console.ServeHTTP(w, r)
			return
		}
		d.echo.ServeHTTP(w, r)
	})
}

// consoleKeyID names a key for a console session: a stored key by its id;
// a configured key by a digest of its hash, since its position in the
// config (its internal id) may name another key after a reload.
func consoleKeyID(k knownKey) string {
	if strings.HasPrefix(k.id, "config[") {
		return "config:" + hex.EncodeToString(k.hash[:8])
	}
	return k.id
}

// Identify returns the console id of a valid key (console.Keys).
func (a *Authenticator) Identify(presented string) (string, bool) {
	if presented == "" {
		return "", false
	}
	h := HashKey(presented)
	a.mu.RLock()
	defer a.mu.RUnlock()
	found := -1 // as in Check: no early exit, no branch on a match
	for i, k := range a.keys {
		found = subtle.ConstantTimeSelect(subtle.ConstantTimeCompare(h[:], k.hash[:]), i, found)
	}
	if found < 0 {
		return "", false
	}
	a.keys[found].lastUsed.Store(time.Now().UnixNano())
	return consoleKeyID(a.keys[found]), true
}

// Valid reports whether a console key id still names a usable key: a
// revoked or removed key ends its console sessions (console.Keys).
func (a *Authenticator) Valid(id string) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, k := range a.keys {
		if consoleKeyID(k) == id {
			return true
		}
	}
	return false
}
