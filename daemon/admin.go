package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sandbox0/sandbox0d/crypto"
	"github.com/sandbox0/sandbox0d/deployments"
	"github.com/sandbox0/sandbox0d/internal/ids"
	"github.com/sandbox0/sandbox0d/internal/wire"
	"github.com/sandbox0/sandbox0d/sessions"
	"github.com/sandbox0/sandbox0d/sessions/local"
	"github.com/sandbox0/sandbox0d/store"
)

// Admin routes serve the operator commands (backup, API keys, key
// rotation). They are reachable over the Unix socket only: whoever can open
// the socket already administers the daemon.

type wireAPIKey struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	Key        string  `json:"key,omitempty"` // only in the create response
	CreatedAt  string  `json:"created_at"`
	LastUsedAt *string `json:"last_used_at"`
	RevokedAt  *string `json:"revoked_at"`
}

func renderKey(k store.APIKey) wireAPIKey {
	w := wireAPIKey{ID: k.ID, Name: k.Name, CreatedAt: k.CreatedAt.UTC().Format(time.RFC3339)}
	if k.RevokedAt != nil {
		s := k.RevokedAt.UTC().Format(time.RFC3339)
		w.RevokedAt = &s
	}
	return w
}

func (d *Daemon) registerAdmin(e *echo.Echo) {
	g := e.Group("/admin", func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !viaSocket(c.Request()) {
				wire.WriteError(c.Response(), http.StatusForbidden, "admin routes are only served on the Unix socket")
				return nil
			}
			return next(c)
		}
	})
	g.GET("/backup", d.adminBackup)
	g.POST("/apikeys", d.adminCreateKey)
	g.GET("/apikeys", d.adminListKeys)
	g.POST("/apikeys/:id/revoke", d.adminRevokeKey)
	g.POST("/keys/rotate", d.adminRotateKeys)
	d.registerWebhookAdmin(g)
	d.registerClusterAdmin(g)
	d.registerCordonAdmin(g) // issue 26
	if d.cfg.Debug.Pprof {
		registerPprof(g)
	}
}

// backupOnEtcd is the answer to a backup on a cluster node: the state is
// etcd's, and etcd's own snapshot is the consistent copy of it.
const backupOnEtcd = "backup copies the bbolt file, and this daemon runs with store.type etcd: the state lives in etcd. " +
	"Take a consistent copy with `etcdctl --endpoints <store.etcd.endpoints> snapshot save FILE` (one member is enough; " +
	"restore with `etcdutl snapshot restore`); see docs/cluster.md"

// Headers of GET /admin/backup naming the live data directory and database
// (absolute paths on the daemon's host, which is the client's: socket only).
const (
	BackupDataDirHeader  = "Sandbox0d-Data-Dir"
	BackupDatabaseHeader = "Sandbox0d-Database"
)

func (d *Daemon) adminBackup(c echo.Context) error {
	if d.store.Engine() == "etcd" {
		// Answered before any byte of a stream, so the client says why
		// instead of reporting a broken download.
		wire.WriteError(c.Response(), http.StatusConflict, backupOnEtcd)
		return nil
	}
	w := c.Response()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="sandbox0d.db"`)
	// The client refuses to write the copy over the live database or into
	// the data directory; it can only know where they are from here.
	if dir, err := filepath.Abs(d.config().DataDir); err == nil {
		w.Header().Set(BackupDataDirHeader, dir)
		w.Header().Set(BackupDatabaseHeader, filepath.Join(dir, store.FileName))
	}
	w.WriteHeader(http.StatusOK)
	n, err := d.store.WriteBackup(w)
	if err != nil {
		// Headers are gone: abort the connection so the client sees a broken
		// stream rather than a short file that looks complete.
		d.log.Error("backup stream failed", "bytes", n, "error", err)
		panic(http.ErrAbortHandler)
	}
	d.log.Info("backup streamed", "bytes", n)
	return nil
}

func (d *Daemon) adminCreateKey(c echo.Context) error {
	var body struct {
		Name string `json:"name"`
	}
	data, err := io.ReadAll(io.LimitReader(c.Request().Body, 4096))
	if err == nil {
		err = json.Unmarshal(data, &body)
	}
	if err != nil {
		wire.WriteError(c.Response(), http.StatusBadRequest, "body must be a JSON object with a name")
		return nil
	}
	name := strings.TrimSpace(body.Name)
	if name == "" || len(name) > 64 {
		wire.WriteError(c.Response(), http.StatusBadRequest, "name: must be 1 to 64 characters")
		return nil
	}
	secret := NewAPIKey()
	hash := HashKey(secret)
	rec := store.APIKey{ID: newKeyID(), Name: name, Hash: hash[:], CreatedAt: time.Now().UTC()}
	if err := d.store.Update(func(tx *store.Tx) error { return tx.PutAPIKey(rec) }); err != nil {
		return err
	}
	if err := d.reloadKeys(); err != nil {
		return err
	}
	d.log.Info("api key created", "id", rec.ID, "name", name)
	out := renderKey(rec)
	out.Key = secret
	return c.JSON(http.StatusOK, out)
}

func (d *Daemon) adminListKeys(c echo.Context) error {
	var keys []store.APIKey
	if err := d.store.View(func(tx *store.Tx) error {
		var err error
		keys, err = tx.ListAPIKeys()
		return err
	}); err != nil {
		return err
	}
	out := struct {
		Data []wireAPIKey `json:"data"`
	}{Data: []wireAPIKey{}}
	for _, k := range keys {
		w := renderKey(k)
		if t, ok := d.auth.LastUsed(k.ID); ok {
			s := t.Format(time.RFC3339)
			w.LastUsedAt = &s
		}
		out.Data = append(out.Data, w)
	}
	return c.JSON(http.StatusOK, out)
}

func (d *Daemon) adminRevokeKey(c echo.Context) error {
	var rec store.APIKey
	err := d.store.Update(func(tx *store.Tx) error {
		var err error
		if rec, err = tx.GetAPIKey(c.Param("id")); err != nil {
			return err
		}
		if rec.RevokedAt == nil {
			now := time.Now().UTC()
			rec.RevokedAt = &now
		}
		return tx.PutAPIKey(rec)
	})
	if errors.Is(err, store.ErrNotFound) {
		wire.WriteError(c.Response(), http.StatusNotFound, fmt.Sprintf("api key %q not found", c.Param("id")))
		return nil
	}
	if err != nil {
		return err
	}
	if err := d.reloadKeys(); err != nil {
		return err
	}
	d.log.Info("api key revoked", "id", rec.ID)
	return c.JSON(http.StatusOK, renderKey(rec))
}

func (d *Daemon) adminRotateKeys(c echo.Context) error {
	if d.identityFromCredential {
		wire.WriteError(c.Response(), http.StatusConflict, "the age identity comes from a systemd credential, which the daemon cannot rewrite: rotate a writable copy offline (sandbox0d keys rotate --offline --data-dir DIR --identity-file COPY, daemon stopped) and install the result as the credential")
		return nil
	}
	d.rotateMu.Lock()
	defer d.rotateMu.Unlock()
	k, err := RotateIdentity(d.identityPath, d.svc, d.store, d.backend, d.log)
	if err != nil {
		return err
	}
	// The final keyring (the new identity alone), behind the sealing check
	// again: the rotation handed the raw keyring to the service and backend.
	d.sealer.k.Store(k)
	d.svc.SetSealer(d.sealer)
	if lb, ok := d.backend.(*local.Backend); ok {
		lb.SetSealer(d.sealer)
	}
	sealed, err := sealedSecrets(d.store)
	if err != nil {
		return err
	}
	n := 0
	for range sealed {
		n++
	}
	return c.JSON(http.StatusOK, map[string]any{"recipient": k.PrimaryRecipient(), "resealed": n})
}

// RotateIdentity adds a new age identity, re-seals every secret to it in one
// transaction, and retires the old identities. An interruption at any point
// leaves every secret openable with the identity file on disk.
// backend, when it is the local backend, gets the new keyring for its
// vault credentials (nil offline).
func RotateIdentity(path string, svc *deployments.Service, st *store.Store, backend sessions.Backend, log *slog.Logger) (*crypto.Keyring, error) {
	sealed, err := sealedSecrets(st)
	if err != nil {
		return nil, err
	}
	return svc.RotateKeys(func() (*crypto.Keyring, error) {
		return crypto.Rotate(path, resealAll(svc, st, backend), sealed, log)
	})
}

func newKeyID() string { return ids.New("key") }
